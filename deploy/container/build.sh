#!/usr/bin/env bash
# Builds Warden's container image from Containerfile, offline:
#   1. a static release binary (glibc linked statically: `-C target-feature=+crt-static`), checked with
#      `file` and `ldd` to need no shared library at all, staged as target/container/warden;
#   2. `podman build` of Containerfile (scratch base, nothing compiled inside the image build).
#
#   deploy/container/build.sh [TAG]        (default tag: warden:dev)
#
# Environment: CARGO_TARGET_DIR (default target/), BUILD_TIMEOUT (seconds for the cargo build,
# default 1800), PODMAN_STORAGE_DRIVER (default vfs: works without overlay or fuse), SKIP_CARGO=1 to
# package an already built binary.
# Needs cargo, file, readelf (binutils), podman (Debian: `apt-get install podman`). Prints one line per step.
set -euo pipefail
cd "$(dirname "$0")/../.."

TAG=${1:-warden:dev}
TRIPLE=x86_64-unknown-linux-gnu
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/$TRIPLE/release/warden
STAGE=target/container/warden
DRIVER=${PODMAN_STORAGE_DRIVER:-vfs}

for tool in cargo file readelf podman; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is required" >&2; exit 1; }
done

# --- 1. the static binary ---
if [ "${SKIP_CARGO:-0}" != 1 ]; then
  started=$SECONDS
  # `--target` keeps RUSTFLAGS off build scripts and proc macros (they must stay dynamic host
  # programs). No debug info and stripped symbols: a smaller image; backtraces keep no names.
  RUSTFLAGS='-C target-feature=+crt-static' \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
    timeout -k 10 "${BUILD_TIMEOUT:-1800}" cargo build --release --locked --quiet --target "$TRIPLE" --bin warden
  echo "build.sh: cargo build --release --target $TRIPLE (crt-static): $((SECONDS - started)) s"
fi
[ -x "$BIN" ] || { echo "build.sh: no binary at $BIN" >&2; exit 1; }

# Static means no program interpreter and no DT_NEEDED entries: `file` says "statically linked" (or
# "static-pie linked"), `ldd` finds nothing to load, and readelf shows neither an INTERP header nor a
# NEEDED entry.
kind=$(file -b "$BIN")
linkage=$(grep -oE 'static(-pie)? linked|statically linked' <<<"$kind" || true)
if [ -z "$linkage" ]; then
  echo "build.sh: $BIN is not static: $kind" >&2
  exit 1
fi
if ldd_out=$(ldd "$BIN" 2>&1) && ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out"; then
  echo "build.sh: ldd finds shared libraries in $BIN:" >&2
  echo "$ldd_out" >&2
  exit 1
fi
if readelf -lW "$BIN" | grep -q 'program interpreter' || readelf -dW "$BIN" | grep -q '(NEEDED)'; then
  echo "build.sh: $BIN has a program interpreter or needs shared libraries:" >&2
  readelf -lW "$BIN" | grep 'program interpreter' >&2
  readelf -dW "$BIN" | grep '(NEEDED)' >&2
  exit 1
fi
echo "build.sh: $BIN is static (file: $linkage; ldd: $(head -n1 <<<"$ldd_out" | xargs); readelf: no INTERP, no NEEDED)"
install -D -m 0755 "$BIN" "$STAGE"
echo "build.sh: staged $STAGE ($(stat -c %s "$STAGE") bytes)"

# --- 2. the image ---
started=$SECONDS
old_id=$(podman --storage-driver "$DRIVER" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
# --isolation chroot: no user namespaces or runtime needed for RUN-less builds like this one.
timeout -k 10 600 podman --storage-driver "$DRIVER" build --quiet --format docker --isolation chroot \
  -f Containerfile -t "$TAG" . >/dev/null
id=$(podman --storage-driver "$DRIVER" image inspect --format '{{.Id}}' "$TAG")
size=$(podman --storage-driver "$DRIVER" image inspect --format '{{.Size}}' "$TAG")
echo "build.sh: podman build -t $TAG: ${id:0:12}, $size bytes, $((SECONDS - started)) s"
# The image this tag named before: remove it if no tag names it any more (and nothing uses it).
if [ -n "$old_id" ] && [ "$old_id" != "$id" ] &&
  [ "$(podman --storage-driver "$DRIVER" image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
  podman --storage-driver "$DRIVER" rmi "$old_id" >/dev/null 2>&1 || true
fi
