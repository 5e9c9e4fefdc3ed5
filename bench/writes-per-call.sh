#!/usr/bin/env bash
# bench/writes-per-call.sh — socket writes per unary call of `warden serve` (issue 13 item 3).
#
#   bench/writes-per-call.sh [BIN=target/release/warden] [CALLS=20000] [CONCS="1 8 32"]
#
# For each in-flight N and each of Health/Check, Authorize (bench/requests/allow_presign.json) and the
# ext_authz Check (bench/requests/check_open.json, examples/bench_check_request): starts
# BIN under `strace -f -c -e trace=writev,write` (server on core 0), sends CALLS calls over one HTTP/2
# connection with N streams in flight (h2load -n CALLS -c 1 -m N, core 1), stops the server, and prints
# the writev and write calls per gRPC call (startup and log writes included: a few in 20,000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$ROOT/target/release/warden}"
CALLS="${CALLS:-20000}"
CONCS="${CONCS:-1 8 32}"
PORT="${PORT:-50161}" ADMIN_PORT="${ADMIN_PORT:-50162}"
REQBIN="$ROOT/target/release/examples/bench_request"
CHECKBIN="$ROOT/target/release/examples/bench_check_request"
command -v strace >/dev/null || { echo "need strace (apt-get install -y strace)" >&2; exit 1; }
command -v h2load >/dev/null || { echo "need h2load (apt-get install -y nghttp2-client)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/writes.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
frame() { local len; len=$(stat -c %s "$1")
  printf "\\x00\\x$(printf %02x $((len >> 24 & 255)))\\x$(printf %02x $((len >> 16 & 255)))\\x$(printf %02x $((len >> 8 & 255)))\\x$(printf %02x $((len & 255)))"
  cat "$1"; }
: > "$WORK/empty.bin"
"$REQBIN" "$ROOT/bench/requests/allow_presign.json" > "$WORK/authorize.bin"
frame "$WORK/empty.bin" > "$WORK/health.grpc"
frame "$WORK/authorize.bin" > "$WORK/authorize.grpc"
"$CHECKBIN" "$ROOT/bench/requests/check_open.json" > "$WORK/check.bin"
frame "$WORK/check.bin" > "$WORK/check.grpc"
printf 'inflight\tcall\tcalls\twritev/call\twrite/call\n'
for c in $CONCS; do
  for m in health authorize check; do
    case $m in
      health) path=/grpc.health.v1.Health/Check ;;
      authorize) path=/warden.v1.Authorizer/Authorize ;;
      check) path=/envoy.service.auth.v3.Authorization/Check ;;
    esac
    taskset -c 0 strace -f -c -e trace=writev,write -o "$WORK/strace.txt" \
      "$BIN" serve --bundle "$ROOT/policies" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
      > "$WORK/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
      curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" > /dev/null 2>&1 && break
      sleep 0.05
    done
    taskset -c 1 h2load -n "$CALLS" -c 1 -m "$c" -d "$WORK/$m.grpc" \
      -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$PORT$path" > "$WORK/h2load.txt" 2>&1
    ok=$(awk '/^requests:/{print $8}' "$WORK/h2load.txt")
    # Stop the server, not strace (which would detach and leave it running): strace then writes its summary.
    kill -TERM "$(pgrep -P "$pid")"; wait "$pid" || true
    awk -v c="$c" -v m="$m" -v n="$ok" '$NF=="writev"{v=$4} $NF=="write"{w=$4}
      END{printf "%s\t%s\t%s\t%.2f\t%.2f\n", c, m, n, v/n, w/n}' "$WORK/strace.txt"
  done
done
