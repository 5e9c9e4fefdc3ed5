#!/usr/bin/env bash
# Runs the image's root file system the way a container runtime would, without one (`podman run`
# cannot start containers in this sandbox: crun cannot set RLIMIT_NOFILE here):
#   1. `podman create` + `podman export` the image's root file system into a temp dir;
#   2. check what is in it: the static /warden, the bundle at /etc/warden/bundle, nothing else that runs;
#   3. start the image's own ENTRYPOINT + CMD under `chroot --userspec=<the image's USER>` in the
#      background (listen ports replaced by free loopback ports, so no other server can answer);
#   4. run the image's own HEALTHCHECK command (pointed at that port) inside the chroot until it exits
#      0 (SERVING), within READY_SECONDS; check /readyz and that the server runs as the image's user;
#   5. SIGTERM, and check that the server exits 0 within STOP_SECONDS.
#
#   deploy/container/test-rootfs.sh [TAG]      (default warden:dev, built by deploy/container/build.sh)
#
# Needs root (chroot), podman, python3 (free ports, JSON), curl. One `ok`/`FAIL` line per check and a
# closing `rootfs: N passed, N failed` line; exit 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

TAG=${1:-warden:dev}
DRIVER=${PODMAN_STORAGE_DRIVER:-vfs}
READY_SECONDS=${READY_SECONDS:-20}
STOP_SECONDS=${STOP_SECONDS:-15}
pm() { timeout -k 5 120 podman --storage-driver "$DRIVER" "$@"; }

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
finish() {
  echo "rootfs: $PASSED passed, $FAILED failed"
  if [ "$FAILED" -ne 0 ] || [ "$PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}

WORK=$(mktemp -d /tmp/warden-rootfs.XXXXXX)
ROOTFS=$WORK/rootfs
PID=
CID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -KILL "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  [ -n "$CID" ] && pm rm -f "$CID" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_log() {
  echo "--- warden log (last 40 lines) ---"
  tail -n 40 "$WORK/warden.log" 2>/dev/null | sed 's/^/    /'
  echo "---"
}

if [ "$(id -u)" -ne 0 ]; then
  fail "root: chroot needs root (run as root, as CI does)"
  finish
fi

# --- 1. the image's configuration and root file system ---
if ! pm image inspect --format '{{json .Config}}' "$TAG" >"$WORK/config.json" 2>"$WORK/inspect.err"; then
  fail "image: $TAG not found (build it with deploy/container/build.sh): $(head -n1 "$WORK/inspect.err")"
  finish
fi
# The docker-format HEALTHCHECK is outside .Config in podman's inspect output.
pm image inspect --format '{{json .HealthCheck}}' "$TAG" >"$WORK/health.json" 2>/dev/null || echo null >"$WORK/health.json"
mapfile -t PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
for s in socks: print(s.getsockname()[1])')
GRPC=127.0.0.1:${PORTS[0]}
ADMIN=127.0.0.1:${PORTS[1]}
# USER, ENTRYPOINT + CMD with the listen addresses replaced, and the HEALTHCHECK command pointed at them.
if ! python3 - "$WORK/config.json" "$WORK/health.json" "$GRPC" "$ADMIN" "$WORK" <<'PY'; then
import json, sys
config, health, grpc, admin, work = sys.argv[1:]
c = json.load(open(config))
h = json.load(open(health)) or {}
user = c.get("User") or ""
argv = (c.get("Entrypoint") or []) + (c.get("Cmd") or [])
swap = {"--listen": grpc, "--admin-listen": admin}
out = list(argv)
for i, a in enumerate(out[:-1]):
    if a in swap:
        out[i + 1] = swap[a]
test = h.get("Test") or []
if test[:1] != ["CMD"]:
    sys.exit(f"no exec-form HEALTHCHECK in the image (built without --format docker?): {h}")
check = [a for a in test[1:]]
for i, a in enumerate(check[:-1]):
    if a == "--addr":
        check[i + 1] = grpc
open(f"{work}/user", "w").write(user)
open(f"{work}/serve.argv", "w").write("\0".join(out))
open(f"{work}/check.argv", "w").write("\0".join(check))
print(f"     image user {user!r}; runs {' '.join(out)}; health {' '.join(check)}")
PY
  fail "image config: cannot read USER, ENTRYPOINT/CMD and HEALTHCHECK"
  finish
fi
USERSPEC=$(cat "$WORK/user")
mapfile -d '' -t SERVE <"$WORK/serve.argv"
mapfile -d '' -t CHECK <"$WORK/check.argv"
case $USERSPEC in
  [1-9]*:[1-9]*) ok "image user: $USERSPEC (numeric, not root)" ;;
  *) fail "image user: '$USERSPEC' is not a numeric non-root uid:gid" ;;
esac

started=$SECONDS
CID=$(pm create "$TAG" 2>"$WORK/create.err" | tail -n1)
mkdir -p "$ROOTFS"
if [ -n "$CID" ] && pm export "$CID" | tar -x -C "$ROOTFS" -f - 2>"$WORK/tar.err"; then
  ok "export: podman create + export of $TAG into $ROOTFS ($((SECONDS - started)) s)"
else
  fail "export: $(cat "$WORK/create.err" "$WORK/tar.err" | head -n3)"
  finish
fi
# mktemp made the root 0700: the image's root directory is 0755.
chmod 0755 "$ROOTFS"

# --- 2. what is in it ---
kind=$(file -b "$ROOTFS/warden")
case $kind in
  *"statically linked"* | *"static-pie linked"*) ok "/warden is static: $(grep -oE 'static(-pie)? linked|statically linked' <<<"$kind")" ;;
  *) fail "/warden is not static: $kind" ;;
esac
if [ "$(stat -c %a "$ROOTFS/warden")" = 755 ]; then ok "/warden mode 0755"; else fail "/warden mode $(stat -c %a "$ROOTFS/warden")"; fi
bundle_files=$(find "$ROOTFS/etc/warden/bundle" -type f | wc -l)
repo_files=$(find policies -type f | wc -l)
if [ "$bundle_files" -eq "$repo_files" ] && diff -r policies "$ROOTFS/etc/warden/bundle" >/dev/null; then
  ok "/etc/warden/bundle: the $bundle_files files of policies/"
else
  fail "/etc/warden/bundle differs from policies/ ($bundle_files vs $repo_files files)"
fi
others=$(cd "$ROOTFS" && find . -type f ! -path './etc/warden/bundle/*' ! -path ./warden ! -path ./usr/share/doc/warden/LICENSE | head)
if [ -z "$others" ]; then ok "nothing else in the image (no shell, no libc)"; else fail "unexpected files: $others"; fi

# --- 3. start the image's command as the image's user ---
chroot --userspec="$USERSPEC" "$ROOTFS" "${SERVE[@]}" >"$WORK/warden.log" 2>&1 &
PID=$!
echo "     warden pid $PID under chroot: gRPC $GRPC, admin $ADMIN"

# --- 4. the image's HEALTHCHECK, inside the chroot, until SERVING ---
started=$SECONDS
serving=
while [ $((SECONDS - started)) -lt "$READY_SECONDS" ] && kill -0 "$PID" 2>/dev/null; do
  if timeout -k 2 10 chroot --userspec="$USERSPEC" "$ROOTFS" "${CHECK[@]}" >"$WORK/check.out" 2>&1; then
    serving=1
    break
  fi
  sleep 0.2
done
if [ -n "$serving" ]; then
  ok "healthcheck: $(cat "$WORK/check.out") after $((SECONDS - started)) s"
else
  fail "healthcheck: not SERVING within $READY_SECONDS s: $(cat "$WORK/check.out" 2>/dev/null)"
  show_log
  finish
fi
if out=$(timeout -k 2 10 chroot --userspec="$USERSPEC" "$ROOTFS" "${CHECK[@]}" --service warden.v1.Authorizer 2>&1); then
  ok "healthcheck --service warden.v1.Authorizer: $out"
else
  fail "healthcheck --service warden.v1.Authorizer: $out"
fi
if out=$(timeout -k 2 10 chroot --userspec="$USERSPEC" "$ROOTFS" "${CHECK[@]}" --service no.such.Service 2>&1); then
  fail "healthcheck of an unknown service exited 0: $out"
else
  ok "healthcheck of an unknown service exits non-zero: $out"
fi
ready=$(curl -s --max-time 5 "http://$ADMIN/readyz")
case $ready in
  "ready sha256:"*) ok "/readyz: $ready" ;;
  *) fail "/readyz: '$ready'" ;;
esac
# The server's process (chroot execs it, so the pid is the server's) runs as the image's user.
ids=$(awk '/^Uid:/ {u=$2} /^Gid:/ {g=$2} END {print u ":" g}' "/proc/$PID/status" 2>/dev/null)
if [ "$ids" = "$USERSPEC" ]; then ok "the server runs as $ids"; else fail "the server runs as '$ids', not $USERSPEC"; fi
rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null)
echo "     RSS after start: ${rss_kib:-?} KiB"

# --- 5. SIGTERM -> exit 0 ---
kill -TERM "$PID"
deadline=$((SECONDS + STOP_SECONDS))
while kill -0 "$PID" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
  fail "SIGTERM: still running after $STOP_SECONDS s"
  show_log
else
  wait "$PID"
  rc=$?
  PID=
  if [ "$rc" -eq 0 ]; then ok "SIGTERM: exit 0"; else fail "SIGTERM: exit $rc"; show_log; fi
fi
finish
