#!/usr/bin/env node
// Differential oracle for Warden: evaluates Warden case-format JSON Lines (SPEC §2.3) with the
// independent implementation @cloud-copilot/iam-simulate (pinned in package.json).
//
// iam-simulate is AGPL-3.0: it is only ever run here, as a separate test process fed JSON. It is
// never vendored, linked into Warden or shipped.
//
// Usage: node tests/differential/simulate.mjs [CASES.jsonl]   (reads stdin when no path is given)
// Output: one JSON line per input case, in input order:
//   {"id": ..., "decision": "Allow"|"ExplicitDeny"|"ImplicitDeny"|"Error", "error"?: "...",
//    "ignored"?: [context keys iam-simulate dropped as not applicable to the action]}
import { readFileSync } from 'node:fs';
import { runSimulation } from '@cloud-copilot/iam-simulate';

const DECISIONS = {
  Allowed: 'Allow',
  ExplicitlyDenied: 'ExplicitDeny',
  ImplicitlyDenied: 'ImplicitDeny'
};

/** The account a resource ARN names; '' for ARNs without one (e.g. S3 buckets). */
function arnAccount(arn) {
  const parts = String(arn).split(':');
  return parts.length >= 6 ? parts[4] : '';
}

/** The customer account a resource lives in; '' when none (no account field, or AWS-owned). */
function resourceAccount(arn) {
  const account = arnAccount(arn);
  return account === 'aws' ? '' : account;
}

/** The account of a principal ARN (user, role, assumed-role session); '' for service principals. */
function principalAccount(principal) {
  return String(principal).startsWith('arn:') ? arnAccount(principal) : '';
}

function toSimulation(c) {
  const policies = c.policies ?? {};
  const req = c.request ?? {};
  if (typeof req.principal !== 'string' || typeof req.action !== 'string' || typeof req.resource !== 'string') {
    throw new Error('request needs string principal, action and resource');
  }
  const identity = policies.identity ?? [];
  const sim = {
    request: {
      principal: req.principal,
      action: req.action,
      resource: {
        resource: req.resource,
        // A resource ARN without an account (S3), or AWS-owned (account field `aws`, e.g.
        // `arn:aws:iam::aws:policy/…`, `…:aws:hub/…`), is not in another customer account: the
        // principal's side alone decides (SPEC §4.1), so it is given the principal's account.
        accountId: resourceAccount(req.resource) || principalAccount(req.principal)
      },
      contextVariables: req.context ?? {}
    },
    identityPolicies: identity.map((policy, i) => ({ name: `identity-${i}`, policy })),
    // Warden: absent `scp` = no SCP applies; `[]` = SCPs apply and none allows. iam-simulate: no
    // org level = nothing to pass; one level with no policy = no allow at that level.
    serviceControlPolicies:
      policies.scp === undefined || policies.scp === null
        ? []
        : [{ orgIdentifier: 'ou-warden', policies: policies.scp.map((policy, i) => ({ name: `scp-${i}`, policy })) }],
    resourceControlPolicies: []
  };
  if (policies.resource) {
    sim.resourcePolicy = policies.resource;
  }
  if (policies.boundary) {
    sim.permissionBoundaryPolicies = [{ name: 'boundary', policy: policies.boundary }];
  }
  return sim;
}

async function evaluate(line) {
  let c;
  try {
    c = JSON.parse(line);
  } catch (e) {
    return { id: null, decision: 'Error', error: `bad JSON: ${e.message}` };
  }
  const id = c?.id ?? null;
  try {
    const result = await runSimulation(toSimulation(c), { simulationMode: 'Strict' });
    if (result.resultType === 'error') {
      return { id, decision: 'Error', error: JSON.stringify(result.errors) };
    }
    const decision = DECISIONS[result.overallResult];
    if (!decision) {
      return { id, decision: 'Error', error: `unexpected result ${result.overallResult}` };
    }
    const out = { id, decision };
    const ignored = result.resultType === 'single' ? result.result?.ignoredContextKeys : undefined;
    if (ignored && ignored.length > 0) {
      out.ignored = ignored;
    }
    if (result.resultType !== 'single') {
      out.resultType = result.resultType;
    }
    return out;
  } catch (e) {
    return { id, decision: 'Error', error: String(e?.stack ?? e) };
  }
}

async function main() {
  const path = process.argv[2];
  const text = path && path !== '-' ? readFileSync(path, 'utf8') : readFileSync(0, 'utf8');
  const out = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    out.push(JSON.stringify(await evaluate(line)));
  }
  process.stdout.write(out.length ? out.join('\n') + '\n' : '');
}

main().catch((e) => {
  process.stderr.write(`simulate.mjs: ${e?.stack ?? e}\n`);
  process.exit(2);
});
