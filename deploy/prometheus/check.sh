#!/usr/bin/env bash
# Checks the observability files against promtool and against a live server:
#   1. `promtool check rules` and `promtool test rules` on alerts.yml / alerts_test.yml;
#   2. every query of the Grafana dashboard (deploy/grafana/warden.json) parses as PromQL (written into
#      a scratch rules file, Grafana's variables replaced, and checked by `promtool check rules`);
#   3. a live `warden serve` on free loopback ports, with a few real calls (ALLOW twice, so once from
#      the cache, an EXPLICIT_DENY, an INVALID_ARGUMENT), scraped at /metrics: `promtool check metrics`
#      finds no problem, and every metric that alerts.yml or the dashboard reads is in the scrape;
#   4. SIGTERM, exit 0.
#
#   deploy/prometheus/check.sh [path/to/warden]     (default target/debug/warden; builds nothing)
#
# Needs promtool (Debian package `prometheus`), python3 and curl; the calls use the Python grpcio of
# tests/smoke/.venv (created by tests/smoke.sh, or here the same way). One `ok`/`FAIL` line per check
# and a closing `prometheus: N passed, N failed` line; exit 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -ge 1 ]; then
  BIN=$1
  case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
else
  BIN=$ROOT/target/debug/warden
fi
cd "$ROOT" || exit 1
PROM=deploy/prometheus
DASHBOARD=deploy/grafana/warden.json
READY_SECONDS=20
STOP_SECONDS=15

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
finish() {
  echo "prometheus: $PASSED passed, $FAILED failed"
  if [ "$FAILED" -ne 0 ] || [ "$PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}
WORK=$(mktemp -d /tmp/warden-prom.XXXXXX)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v promtool >/dev/null; then
  fail "promtool: not installed (Debian: apt-get install prometheus)"
  finish
fi

# --- 1. alert rules ---
if out=$(timeout -k 5 60 promtool check rules "$PROM/alerts.yml" 2>&1); then
  ok "promtool check rules alerts.yml: $(grep -o '[0-9]* rules found' <<<"$out")"
else
  fail "promtool check rules alerts.yml:"$'\n'"$out"
fi
if out=$(cd "$PROM" && timeout -k 5 120 promtool test rules alerts_test.yml 2>&1); then
  ok "promtool test rules alerts_test.yml: $(grep -c 'alertname:' "$PROM/alerts_test.yml") alert checks pass"
else
  fail "promtool test rules alerts_test.yml:"$'\n'"$out"
fi

# --- 2. the dashboard's queries ---
if ! python3 - "$DASHBOARD" "$WORK/dashboard-rules.yml" "$WORK/dashboard-metrics.txt" <<'PY' >"$WORK/dash.out" 2>&1; then
import json, re, sys
dashboard, rules, names = sys.argv[1:]
d = json.load(open(dashboard))
exprs = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
        walk(p.get("panels", []))
walk(d["panels"])
for v in d["templating"]["list"]:
    q = v.get("query")
    if isinstance(q, dict) and q["query"].startswith("label_values("):
        # label_values(SELECTOR, label): the selector is PromQL.
        exprs.append((f"variable {v['name']}", q["query"][len("label_values("):].rsplit(",", 1)[0]))
subst = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m", "$job": ".*", "$instance": ".*"}
with open(rules, "w") as fh:
    fh.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        if "$" in e:
            sys.exit(f"{title}: an unknown Grafana variable in `{e}`")
        fh.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
metrics = set()
for _, e in exprs:
    metrics.update(re.findall(r"\b((?:warden|process)_[a-z_]+)\b", e))
open(names, "w").write("\n".join(sorted(metrics)) + "\n")
print(len(exprs))
PY
  fail "dashboard: $(cat "$WORK/dash.out")"
elif out=$(timeout -k 5 60 promtool check rules "$WORK/dashboard-rules.yml" 2>&1); then
  ok "dashboard: all $(cat "$WORK/dash.out") queries of $DASHBOARD parse (promtool check rules)"
else
  fail "dashboard queries:"$'\n'"$out"
fi

# --- 3. a live server ---
if [ ! -x "$BIN" ]; then
  fail "warden: $BIN is not an executable (build it first: cargo build)"
  finish
fi
VENV=tests/smoke/.venv
PY=$VENV/bin/python
if ! "$PY" -c 'import grpc' 2>/dev/null; then
  rm -rf "$VENV"
  if ! { python3 -m venv "$VENV" && timeout -k 5 600 "$PY" -m pip install --quiet --disable-pip-version-check \
    -r tests/smoke/requirements.txt && sha256sum tests/smoke/requirements.txt | cut -d' ' -f1 >"$VENV/.requirements.sha256"; } \
    >"$WORK/pip.log" 2>&1; then
    fail "python client: cannot create $VENV from tests/smoke/requirements.txt"
    tail -n 20 "$WORK/pip.log" | sed 's/^/    /'
    finish
  fi
fi
mapfile -t PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])')
GRPC=127.0.0.1:${PORTS[0]}
ADMIN=127.0.0.1:${PORTS[1]}
"$BIN" serve --bundle policies --listen "$GRPC" --admin-listen "$ADMIN" >"$WORK/warden.log" 2>&1 &
PID=$!
started=$SECONDS
until timeout -k 1 5 "$BIN" healthcheck --addr "$GRPC" >/dev/null 2>&1; do
  if [ $((SECONDS - started)) -ge "$READY_SECONDS" ] || ! kill -0 "$PID" 2>/dev/null; then
    fail "serve: not SERVING within $READY_SECONDS s"
    tail -n 20 "$WORK/warden.log" | sed 's/^/    /'
    finish
  fi
  sleep 0.1
done
ok "serve: SERVING on $GRPC (admin $ADMIN) after $((SECONDS - started)) s"

# Raw protobuf (no generated code): AuthorizeRequest {principal {arn} = 1, action = 2, resource = 3}.
if timeout -k 5 60 "$PY" - "$GRPC" >"$WORK/traffic.out" 2>&1 <<'PY'; then
import sys, grpc
def field(n, b):
    b = b.encode() if isinstance(b, str) else b
    head, size = bytes([(n << 3) | 2]), len(b)
    while size >= 0x80:
        head += bytes([(size & 0x7F) | 0x80]); size >>= 7
    return head + bytes([size]) + b
def request(arn, action, resource):
    return field(1, field(1, arn)) + field(2, action) + field(3, resource)
alice = "arn:aws:sts::111122223333:assumed-role/SageMakerStudioExecutionRoleTeam1/alice-Team1"
presign = "sagemaker:CreatePartnerAppPresignedUrl"
comet = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-COMETTEAM001"
fiddler = "arn:aws:sagemaker:us-east-1:111122223333:partner-app/app-FIDDLERTM002"
call = grpc.insecure_channel(sys.argv[1]).unary_unary("/warden.v1.Authorizer/Authorize")
for req in [request(alice, presign, comet), request(alice, presign, comet), request(alice, presign, fiddler)]:
    call(req, timeout=5)
try:
    call(request("", presign, comet), timeout=5)
    sys.exit("an empty principal was answered OK")
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
        sys.exit(f"an empty principal: {e.code()}")
print("4 calls")
PY
  ok "traffic: $(cat "$WORK/traffic.out") (allow, allow from the cache, explicit deny, invalid argument)"
else
  fail "traffic: $(tail -n 5 "$WORK/traffic.out")"
fi
if curl -sf --max-time 10 "http://$ADMIN/metrics" -o "$WORK/metrics.txt"; then
  ok "scrape: /metrics, $(grep -c '^[a-z]' "$WORK/metrics.txt") samples"
else
  fail "scrape: GET http://$ADMIN/metrics failed"
fi
if out=$(timeout -k 5 60 promtool check metrics <"$WORK/metrics.txt" 2>&1) && [ -z "$out" ]; then
  ok "promtool check metrics: no problem"
else
  fail "promtool check metrics:"$'\n'"$(sed 's/^/    /' <<<"$out")"
fi
# Every metric a rule or a panel reads is served (a histogram's name stands for its _bucket/_count/_sum).
grep -ohE '\b(warden|process)_[a-z_]+\b' "$PROM/alerts.yml" | sort -u >"$WORK/alert-metrics.txt"
missing=
while read -r m; do
  [ -z "$m" ] && continue
  grep -qE "^$m(_bucket|_count|_sum)?(\{| )" "$WORK/metrics.txt" || missing="$missing $m"
done < <(sort -u "$WORK/alert-metrics.txt" "$WORK/dashboard-metrics.txt" 2>/dev/null)
if [ -z "$missing" ]; then
  ok "every metric read by alerts.yml and the dashboard is served ($(sort -u "$WORK/alert-metrics.txt" "$WORK/dashboard-metrics.txt" | grep -c .))"
else
  fail "metrics read by alerts.yml or the dashboard but not served:$missing"
fi

# --- 4. SIGTERM -> exit 0 ---
kill -TERM "$PID"
deadline=$((SECONDS + STOP_SECONDS))
while kill -0 "$PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  fail "SIGTERM: still running after $STOP_SECONDS s"
else
  wait "$PID"
  rc=$?
  PID=
  if [ "$rc" -eq 0 ]; then ok "SIGTERM: exit 0"; else fail "SIGTERM: exit $rc"; fi
fi
finish
