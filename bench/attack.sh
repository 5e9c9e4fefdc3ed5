#!/usr/bin/env bash
# bench/attack.sh — Warden's bounds under attack (SPEC §8, issue 9), each against a same-run baseline:
# server CPU of the worst valid request vs. an ordinary one, RSS after 1,500 distinct ~400 KB requests,
# and a well-behaved client's p50/p99 while each attack runs vs. on a quiet server. Connection attacks
# (2,000 connections, 8 that never read) are measured by bench/attack-connections (see BENCHMARKS.md).
#
#   bench/attack.sh            # from anywhere; builds release binaries unless NO_BUILD=1
#
# Env: PORT=50161 ADMIN_PORT=50162 CALLS=2000 NO_BUILD=0. Loopback only; the server is stopped with
# SIGTERM at the end (exit status checked).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${PORT:-50161}"
ADMIN_PORT="${ADMIN_PORT:-50162}"
CALLS="${CALLS:-2000}"
if [ "${NO_BUILD:-0}" != 1 ]; then
  cargo build --release --quiet --bin warden --example attack
fi
target/release/warden serve --bundle policies --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  >/tmp/warden-attack.log 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "# $(date -u +%FT%TZ) $(git rev-parse --short=12 HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 600 target/release/examples/attack --addr "127.0.0.1:$PORT" --pid "$PID" --calls "$CALLS"
kill -TERM "$PID"
wait "$PID"
echo "server exited $?"
trap - EXIT
