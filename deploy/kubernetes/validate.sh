#!/usr/bin/env bash
# Checks the Kubernetes example (deploy/kubernetes/*.yaml), offline:
#   1. the generated ConfigMap and `items:` are up to date with policies/ (make-configmap.py --check);
#   2. every manifest validates against the Kubernetes JSON schemas, strictly (unknown fields are
#      errors), for 1.29 (the first release with native sidecars on by default) and 1.37
#      (PyPI kubernetes-validate, which bundles the schemas: no cluster, no network);
#   3. the pod keeps what the example promises (non-root, read-only root, no privilege escalation,
#      no capabilities, resources, probes that run `warden healthcheck`, scrape annotations);
#   4. the ConfigMap volume, laid out as the kubelet lays it out (a `..<timestamp>` folder, the
#      `..data` symlink, a top-level symlink per first path segment), is the same bundle as policies/:
#      `warden validate` prints the same revision for both.
#
#   deploy/kubernetes/validate.sh [path/to/warden]     (default target/debug/warden; builds nothing)
#
# Installs kubernetes-validate (pinned) with pip when it is missing. One `ok`/`FAIL` line per check
# and a closing `kubernetes: N passed, N failed` line; exit 1 on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -ge 1 ]; then
  BIN=$1
  case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
else
  BIN=$ROOT/target/debug/warden
fi
cd "$ROOT" || exit 1
K8S=deploy/kubernetes
KV_VERSION=1.37.0
MANIFESTS=("$K8S/deployment.yaml" "$K8S/bundle-configmap.yaml")

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
finish() {
  echo "kubernetes: $PASSED passed, $FAILED failed"
  if [ "$FAILED" -ne 0 ] || [ "$PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}
WORK=$(mktemp -d /tmp/warden-k8s.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- 1. generated files ---
if out=$(timeout -k 5 60 python3 "$K8S/make-configmap.py" --check 2>&1); then ok "$out"; else fail "$out"; fi

# --- 2. schemas ---
if ! python3 -c 'import kubernetes_validate, yaml' 2>/dev/null ||
  [ "$(python3 -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null)" != "$KV_VERSION" ]; then
  if ! timeout -k 5 600 python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION" >"$WORK/pip.log" 2>&1; then
    fail "kubernetes-validate: cannot install $KV_VERSION with pip"
    tail -n 20 "$WORK/pip.log" | sed 's/^/    /'
    finish
  fi
fi
for k in 1.29.0 1.37.0; do
  if out=$(timeout -k 5 120 python3 -m kubernetes_validate --strict --quiet -k "$k" "${MANIFESTS[@]}" 2>&1); then
    ok "schemas: ${MANIFESTS[*]} valid for Kubernetes $k (strict)"
  else
    fail "schemas: Kubernetes $k: $out"
  fi
done

# --- 3 and 4. what the pod promises; the kubelet's layout of the ConfigMap volume ---
timeout -k 5 60 python3 - "$K8S" "$WORK/volume" >"$WORK/py.out" 2>&1 <<'PY'

import os, sys, yaml

k8s, volume = sys.argv[1:]
def ok(m): print(f"ok   {m}")
def fail(m): print(f"FAIL {m}")
def check(cond, m):
    (ok if cond else fail)(m)

dep = yaml.safe_load(open(f"{k8s}/deployment.yaml"))
cm = yaml.safe_load(open(f"{k8s}/bundle-configmap.yaml"))
pod = dep["spec"]["template"]
spec = pod["spec"]
warden = next((c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "warden"), None)
if warden is None:
    fail("pod: no container named warden"); sys.exit(0)
ann = pod["metadata"].get("annotations", {})
check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464",
      "pod: prometheus.io scrape annotations on the admin port 9464")
check(spec.get("securityContext", {}).get("runAsNonRoot") is True, "pod: runAsNonRoot")
for c in spec.get("initContainers", []) + spec["containers"]:
    sc = c.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
          and sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities", {}).get("drop") == ["ALL"],
          f"container {c['name']}: non-root, read-only root, no privilege escalation, capabilities drop ALL")
    r = c.get("resources", {})
    check("cpu" in r.get("requests", {}) and "memory" in r.get("requests", {}) and "memory" in r.get("limits", {}),
          f"container {c['name']}: cpu and memory requests, memory limit")
check(warden.get("restartPolicy") == "Always", "warden: a native sidecar (init container, restartPolicy Always)")
args = warden.get("args", [])
check("--listen" in args and args[args.index("--listen") + 1].startswith("127.0.0.1:"), "warden: gRPC on loopback only")
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    cmd = warden.get(probe, {}).get("exec", {}).get("command", [])
    check(cmd[:2] == ["/warden", "healthcheck"], f"warden: {probe} runs `warden healthcheck` ({' '.join(cmd)})")
mounts = [m for m in warden.get("volumeMounts", []) if m["name"] == "bundle"]
check(len(mounts) == 1 and mounts[0]["mountPath"] == "/etc/warden/bundle" and "subPath" not in mounts[0],
      "warden: the bundle volume at /etc/warden/bundle, whole (no subPath: it would never be updated)")
vol = next(v for v in spec["volumes"] if v["name"] == "bundle")
check(vol["configMap"]["name"] == cm["metadata"]["name"], "volume: names the generated ConfigMap")
items = vol["configMap"].get("items", [])
keys = [i["key"] for i in items]
check(sorted(keys) == sorted(cm["data"]) and len(set(keys)) == len(keys),
      f"volume: {len(items)} items, one per ConfigMap key")

# The kubelet's atomic writer: files in a timestamped hidden folder, `..data` -> that folder, and
# one symlink per top-level entry -> `..data/<entry>`.
stamp = "..2026_01_01_00_00_00.000000000"
os.makedirs(f"{volume}/{stamp}")
for i in items:
    path = f"{volume}/{stamp}/{i['path']}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(cm["data"][i["key"]])
os.symlink(stamp, f"{volume}/..data")
for top in sorted({i["path"].split("/")[0] for i in items}):
    os.symlink(f"..data/{top}", f"{volume}/{top}")
ok(f"volume: laid out as the kubelet does in {volume} ({len(items)} files)")
PY
prc=$?
cat "$WORK/py.out"
while read -r status _; do
  case $status in ok) PASSED=$((PASSED + 1)) ;; FAIL) FAILED=$((FAILED + 1)) ;; esac
done <"$WORK/py.out"
if [ "$prc" -ne 0 ] || ! grep -q 'laid out as the kubelet' "$WORK/py.out"; then
  fail "pod checks: the script did not finish"
  finish
fi

if [ ! -x "$BIN" ]; then
  fail "warden: $BIN is not an executable (build it first: cargo build)"
  finish
fi
want=$(timeout -k 5 60 "$BIN" validate policies 2>&1)
have=$(timeout -k 5 60 "$BIN" validate "$WORK/volume" 2>&1)
rev() { grep -o 'sha256:[0-9a-f]\{64\}' <<<"$1" | head -n1; }
if [ -n "$(rev "$want")" ] && [ "$(rev "$want")" = "$(rev "$have")" ]; then
  ok "warden validate: the mounted ConfigMap is the bundle of policies/ (revision $(rev "$have"))"
else
  fail "warden validate: policies/ gives '$want', the mounted ConfigMap '$have'"
fi
finish
