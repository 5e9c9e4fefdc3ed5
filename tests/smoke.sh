#!/usr/bin/env bash
# End-to-end smoke test of `warden serve` with a real third-party gRPC client (Python grpcio).
#
#   bash tests/smoke.sh [path/to/warden]      (default: target/debug/warden; builds nothing)
#
# Installs the pinned client (tests/smoke/requirements.txt) into the git-ignored tests/smoke/.venv,
# starts warden on free loopback ports plus a Unix socket, waits for /readyz, then checks through
# server reflection only (no .proto files): service listing, descriptors, health, an ALLOW and an
# EXPLICIT_DENY decision, the same ALLOW over the Unix socket (grpc-core sends the socket path as
# :authority), an INVALID_ARGUMENT, Envoy ext_authz v3 Check over both listeners with the
# xds-protos client (tests/ext_authz_client.py), and a clean exit 0 on SIGTERM. One `ok ...`/`FAIL ...` line per
# check, a closing `smoke: N passed, N failed` line, and a non-zero exit on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# An explicit path is relative to the caller's directory; the default to the repository root.
if [ $# -ge 1 ]; then
  BIN=$1
  case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
else
  BIN=$ROOT/target/debug/warden
fi
cd "$ROOT"

SMOKE=$ROOT/tests/smoke
VENV=$SMOKE/.venv
READY_SECONDS=20
STOP_SECONDS=10

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# Counts the ok/FAIL lines of a helper's output (already printed).
tally() {
  PASSED=$((PASSED + $(grep -c '^ok ' "$1" || true)))
  FAILED=$((FAILED + $(grep -c '^FAIL ' "$1" || true)))
}
finish() {
  echo "smoke: $PASSED passed, $FAILED failed"
  if [ "$FAILED" -ne 0 ] || [ "$PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}

# Under /tmp, not $TMPDIR: a Unix socket path must stay under 108 bytes.
WORK=$(mktemp -d /tmp/warden-smoke.XXXXXX)
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

show_log() {
  echo "--- warden log (last 40 lines) ---"
  tail -n 40 "$WORK/warden.log" 2>/dev/null | sed 's/^/    /'
  echo "---"
}

if [ ! -x "$BIN" ]; then
  fail "binary: $BIN is not an executable (build it first: cargo build)"
  finish
fi

# --- Python client (pinned, reinstalled when requirements.txt changes) ---
PY=$VENV/bin/python
STAMP=$VENV/.requirements.sha256
WANT=$(sha256sum "$SMOKE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$PY" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  rm -rf "$VENV"
  if python3 -m venv "$VENV" >"$WORK/pip.log" 2>&1 &&
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$SMOKE/requirements.txt" >>"$WORK/pip.log" 2>&1; then
    echo "$WANT" >"$STAMP"
  else
    fail "python client: cannot create $VENV with tests/smoke/requirements.txt"
    sed 's/^/    /' "$WORK/pip.log" | tail -n 20
    rm -rf "$VENV"
    finish
  fi
fi
ok "python client: $("$PY" -c 'import grpc, google.protobuf as p; print(f"grpcio {grpc.__version__}, protobuf {p.__version__}")')"

# --- Start warden ---
mapfile -t PORTS < <("$PY" "$SMOKE/smoke.py" ports 2)
if [ "${#PORTS[@]}" -ne 2 ]; then
  fail "free ports: could not pick two loopback ports"
  finish
fi
GRPC=127.0.0.1:${PORTS[0]}
ADMIN=127.0.0.1:${PORTS[1]}
SOCK=$WORK/warden.sock

"$BIN" serve --bundle policies --listen "$GRPC" --admin-listen "$ADMIN" --uds "$SOCK" >"$WORK/warden.log" 2>&1 &
PID=$!
echo "     warden pid $PID: gRPC $GRPC + unix:$SOCK, admin $ADMIN"

"$PY" "$SMOKE/smoke.py" wait-ready "http://$ADMIN/readyz" "$PID" "$READY_SECONDS" | tee "$WORK/ready.out"
tally "$WORK/ready.out"
if ! grep -q '^ok ' "$WORK/ready.out"; then
  show_log
  finish
fi
if [ -S "$SOCK" ]; then ok "unix socket: $SOCK exists"; else fail "unix socket: $SOCK missing"; fi

# --- gRPC checks (bounded: every RPC has a 5 s deadline; the whole run at most 120 s) ---
timeout -k 5 120 "$PY" "$SMOKE/smoke.py" check --tcp "$GRPC" --uds "$SOCK" 2>&1 | tee "$WORK/check.out"
rc=${PIPESTATUS[0]}
tally "$WORK/check.out"
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$WORK/check.out"; then
  fail "gRPC checks: client exited $rc without reporting a failure"
fi

# --- Envoy ext_authz v3 with the xds-protos client (tests/ext_authz_client.py), TCP and Unix socket ---
timeout -k 5 60 "$PY" "$ROOT/tests/ext_authz_client.py" --tcp "$GRPC" --uds "$SOCK" 2>&1 | tee "$WORK/ext_authz.out"
rc=${PIPESTATUS[0]}
tally "$WORK/ext_authz.out"
if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$WORK/ext_authz.out"; then
  fail "ext_authz checks: client exited $rc without reporting a failure"
fi

# --- Graceful shutdown: SIGTERM -> exit 0 within $STOP_SECONDS s ---
if kill -0 "$PID" 2>/dev/null; then
  kill -TERM "$PID"
  deadline=$((SECONDS + STOP_SECONDS))
  while kill -0 "$PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$PID" 2>/dev/null; then
    fail "SIGTERM: warden still running after ${STOP_SECONDS}s"
  else
    wait "$PID"
    code=$?
    PID=
    if [ "$code" -eq 0 ]; then ok "SIGTERM: warden exited 0"; else fail "SIGTERM: warden exited $code"; fi
    if [ -e "$SOCK" ]; then echo "     note: $SOCK left behind after shutdown"; fi
  fi
else
  fail "SIGTERM: warden was no longer running before SIGTERM"
fi

[ "$FAILED" -ne 0 ] && show_log
finish
