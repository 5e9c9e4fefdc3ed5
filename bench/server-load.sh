#!/usr/bin/env bash
# bench/server-load.sh — load benchmark of `warden serve` (issue #3, SPEC §8 layout):
# warden.v1.Authorizer/Authorize vs grpc.health.v1.Health/Check of the SAME server, same tool (h2load via
# ../shared/bench/grpc-load.sh), same concurrency, A/B alternated.
#
#   bench/server-load.sh                 # from the repo root (or anywhere: it cd's to the repo)
#
# Layout: server pinned to core 0 (`taskset -c 0`), load client to core 1 (`taskset -c 1`), TCP loopback,
# ONE HTTP/2 connection with N streams in flight (h2load -c 1 -m N), WARMUP s warm-up + DURATION s measured.
# For each in-flight N the calls rotate Health, Authorize(request 1), Authorize(request 2)... for ROUNDS
# rounds. Per run: calls/s, p50/p99 (h2load per-request log), server CPU per call (utime+stime of the
# server from /proc/PID/stat over a window inside the measured period, divided by calls in that window),
# and whether the machine was quiet. RSS (VmRSS/VmHWM) idle and after each concurrency. Then the server
# is stopped with SIGTERM (exit status must be 0), optionally after a `perf record -g` of an Authorize run.
#
# Env (defaults):
#   CONCS="1 8 32"    in-flight calls (streams on one connection)
#   ROUNDS=2          A/B rounds per concurrency
#   DURATION=10 WARMUP=2
#   REQUESTS="allow_presign cerbos_call_same_team"   bench/requests/<name>.json, AuthorizeRequest proto JSON
#   CHECKS="check_open"  bench/requests/<name>.json, an Envoy ext_authz CheckRequest described for
#                     examples/bench_check_request; run as envoy.service.auth.v3.Authorization/Check
#   PORT=50151 ADMIN_PORT=50152   loopback ports
#   WARDEN_BIN=       use this binary instead of building target/release/warden (e.g. a patched build)
#   NO_BUILD=0        1: do not run cargo build (use the existing target/release binaries)
#   LABEL=            free text recorded in the results (e.g. "as-is", "nodelay patch")
#   LOAD_MAX=0.5      before starting: wait (up to LOAD_WAIT s) until the 1-min load average is <= this
#   QUIET_PCT=15      before each run: wait (up to QUIET_WAIT s) until the machine (our server idle, no
#   QUIET_WAIT=180    client) is below this % busy over 1 s, i.e. nobody else is using a core
#   PERF=1            after the A/B runs: `perf record -g` the server during an Authorize run at the
#   PERF_CONC=32      largest concurrency, report top symbols (perf.txt)
#   NICE=0            run server and client under `nice -n NICE` (e.g. -20 when other people's CPU hogs
#                     cannot be waited out: CFS then gives our pinned processes ~99 % of their cores)
#   DISTURB_PCT=10    a run during which other processes used more than this % of core 0 (core 0 busy
#                     minus the server's own CPU) is marked disturbed and repeated once; the table takes
#                     the median of the undisturbed runs (all runs if none was undisturbed)
# Results: bench/results/<UTC timestamp>[-LABEL]/ (git-ignored): env.txt, runs.tsv, table.md, summary.md,
# per-run grpc-load output, server.log, metrics after the runs, perf report.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOADER="$ROOT/../shared/bench/grpc-load.sh"

CONCS="${CONCS:-1 8 32}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REQUESTS="${REQUESTS:-allow_presign cerbos_call_same_team}"
CHECKS="${CHECKS-check_open}"
PORT="${PORT:-50151}"
ADMIN_PORT="${ADMIN_PORT:-50152}"
NO_BUILD="${NO_BUILD:-0}"
LABEL="${LABEL:-}"
LOAD_MAX="${LOAD_MAX:-0.5}"
LOAD_WAIT="${LOAD_WAIT:-240}"
QUIET_PCT="${QUIET_PCT:-15}"
QUIET_WAIT="${QUIET_WAIT:-180}"
PERF="${PERF:-1}"
PERF_CONC="${PERF_CONC:-32}"
DISTURB_PCT="${DISTURB_PCT:-10}"
NICE="${NICE:-0}"
HZ=$(getconf CLK_TCK)

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

(( DURATION >= 3 && DURATION <= 60 )) || die "DURATION must be 3..60 s"
(( ROUNDS >= 1 && ROUNDS <= 5 )) || die "ROUNDS must be 1..5"
[[ -x $LOADER ]] || die "$LOADER not found (the shared bench scripts)"
(( $(nproc) >= 2 )) || die "need 2 cores (server on core 0, client on core 1)"

# --- tools --------------------------------------------------------------------------------------------
need=()
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v nghttp >/dev/null || need+=(nghttp2-client)
command -v taskset >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
if (( ${#need[@]} )); then
  log "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; }
fi

# --- build --------------------------------------------------------------------------------------------
if [[ $NO_BUILD != 1 ]]; then
  log "cargo build --release --bin warden --example bench_request --example bench_check_request"
  cargo build --release --bin warden --example bench_request --example bench_check_request 2>&1 | tail -2 >&2
fi
BIN="${WARDEN_BIN:-$ROOT/target/release/warden}"
[[ -x $BIN ]] || die "no warden binary at $BIN"
REQBIN="$ROOT/target/release/examples/bench_request"
[[ -x $REQBIN ]] || die "no $REQBIN (cargo build --release --example bench_request)"
CHECKBIN="$ROOT/target/release/examples/bench_check_request"
[[ -z $CHECKS || -x $CHECKBIN ]] || die "no $CHECKBIN (cargo build --release --example bench_check_request)"

RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)${LABEL:+-${LABEL// /_}}"
OUT="$ROOT/bench/results/$RUN_ID"
mkdir -p "$OUT/runs"
# Snapshot the binary: other people rebuild target/ while this runs; perf needs the same file.
cp "$BIN" "$OUT/warden"
BIN="$OUT/warden"

# --- request files --------------------------------------------------------------------------------------
: > "$OUT/empty.bin"   # grpc.health.v1.HealthCheckRequest{} (service "" = the whole server)
for r in $REQUESTS; do
  j="$ROOT/bench/requests/$r.json"
  [[ -r $j ]] || die "no request file $j"
  "$REQBIN" "$j" > "$OUT/$r.bin"
  dec=$("$BIN" eval --request "$j" --bundle "$ROOT/policies" | awk -F'"' '/"decision"/{print $4; exit}')
  log "request $r: $(stat -c %s "$OUT/$r.bin") bytes protobuf, offline decision $dec"
  echo "$r $dec" >> "$OUT/requests_offline_decision.txt"
done
for r in $CHECKS; do
  j="$ROOT/bench/requests/$r.json"
  [[ -r $j ]] || die "no request file $j"
  "$CHECKBIN" "$j" > "$OUT/$r.bin"
  log "check request $r: $(stat -c %s "$OUT/$r.bin") bytes protobuf (its answer is read from the metrics after the runs)"
done

{
  echo "run_id: $RUN_ID"
  echo "label: ${LABEL:-as-is}"
  echo "host: $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null) ($(git status --porcelain -- src Cargo.toml Cargo.lock proto 2>/dev/null | wc -l) changed files in src/Cargo/proto at run time)"
  echo "binary: ${WARDEN_BIN:-target/release/warden} sha256 $(sha256sum "$BIN" | cut -c1-16) built $(date -u -r "${WARDEN_BIN:-$ROOT/target/release/warden}" +%FT%TZ)"
  echo "h2load: $(h2load --version | head -1)"
  echo "layout: server taskset -c 0, client taskset -c 1, nice $NICE, 1 connection, -m = in flight, WARMUP=$WARMUP s, DURATION=$DURATION s, ROUNDS=$ROUNDS, CONCS='$CONCS'"
  echo "requests: health(empty) $REQUESTS; ext_authz checks: ${CHECKS:-none}"
} | tee "$OUT/env.txt" >&2

port_busy() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
for p in "$PORT" "$ADMIN_PORT"; do port_busy "$p" && die "port $p is in use"; done

# --- quietness ------------------------------------------------------------------------------------------
load1() { cut -d' ' -f1 /proc/loadavg; }
# busy % of the whole machine (both cores) over 1 s, from /proc/stat
busy_pct() {
  local a b
  read -r -a a < <(head -1 /proc/stat); sleep 1; read -r -a b < <(head -1 /proc/stat)
  awk -v u="$((b[1]-a[1]))" -v n="$((b[2]-a[2]))" -v s="$((b[3]-a[3]))" -v i="$((b[4]-a[4]))" -v w="$((b[5]-a[5]))" \
      -v q="$((b[6]-a[6]))" -v sq="$((b[7]-a[7]))" -v st="$((b[8]-a[8]))" \
      'BEGIN{busy=u+n+s+q+sq+st; tot=busy+i+w; printf "%.1f\n", (tot > 0 ? 100*busy/tot : 0)}'
}
top_others() { top -b -n 2 -d 0.5 -w 200 | awk '/^top -/{n++} n==2 && $1 ~ /^[0-9]+$/ && $9+0 >= 5 {printf "%s(%s%%) ", $12, $9}'; }

waited_total=0
log "1-min load average $(load1) (want <= $LOAD_MAX before starting)"
w=0
while awk -v l="$(load1)" -v m="$LOAD_MAX" 'BEGIN{exit !(l>m)}' && (( w < LOAD_WAIT )); do
  (( w == 0 )) && log "  machine busy: load $(load1); others: $(top_others); waiting up to ${LOAD_WAIT}s"
  sleep 10; w=$((w + 10))
done
echo "start: load1=$(load1) waited=${w}s $( (( w >= LOAD_WAIT )) && echo '(gave up waiting)')" | tee -a "$OUT/quiet.log" >&2
waited_total=$((waited_total + w))

# wait until nothing else uses CPU (our server idle, no client running); sets QUIET_BUSY, QUIET_WAITED
wait_quiet() {
  local busy w=0
  busy=$(busy_pct)
  while awk -v b="$busy" -v q="$QUIET_PCT" 'BEGIN{exit !(b>q)}' && (( w < QUIET_WAIT )); do
    (( w == 0 )) && log "  machine ${busy}% busy with our server idle; others: $(top_others); waiting up to ${QUIET_WAIT}s"
    sleep 4; w=$((w + 5)); busy=$(busy_pct)
  done
  QUIET_BUSY=$busy QUIET_WAITED=$w
  waited_total=$((waited_total + w))
}

# --- server ----------------------------------------------------------------------------------------------
SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    sleep 2; kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

log "starting: nice -n $NICE taskset -c 0 $BIN serve --bundle policies --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN_PORT"
nice -n "$NICE" taskset -c 0 "$BIN" serve --bundle "$ROOT/policies" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
t0=$(date +%s%N)
ready=0
for _ in $(seq 1 200); do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail "$OUT/server.log" >&2; die "server exited during startup"; }
  if curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" > "$OUT/readyz.txt" 2>/dev/null; then ready=1; break; fi
  sleep 0.05
done
(( ready )) || die "server not ready after 10 s"
log "ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms: $(cat "$OUT/readyz.txt"); affinity $(taskset -pc "$SERVER_PID" | awk -F': ' '{print $2}'); threads $(awk '/^Threads:/{print $2}' /proc/$SERVER_PID/status)"

ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
mem() { awk '/^VmRSS:/{r=$2} /^VmHWM:/{h=$2} END{printf "%.1f %.1f\n", r/1024, h/1024}' "/proc/$SERVER_PID/status"; }
# CPU ticks of this shell's waited-for children (the load client: grpc-load.sh, h2load)
child_ticks() { awk '{print $16 + $17}' /proc/$$/stat; }
cpu01() { awk '/^cpu0 /{printf "%d ", $2+$3+$4+$7+$8+$9} /^cpu1 /{printf "%d", $2+$3+$4+$7+$8+$9}' /proc/stat; }

sleep 1
read -r RSS_IDLE HWM_IDLE < <(mem)
log "idle: VmRSS $RSS_IDLE MiB, VmHWM $HWM_IDLE MiB"
echo "idle rss_mib=$RSS_IDLE hwm_mib=$HWM_IDLE" > "$OUT/memory.txt"

printf 'inflight\tround\tmethod\tcalls_s\tp50_us\tp99_us\tp999_us\tmean_us\tserver_cpu_us_per_call\tserver_cpu_pct\tcpu0_other_pct\tcpu1_busy_pct\tmachine_busy_before_pct\tload1_before\twaited_s\tsucceeded\tdisturbed\n' > "$OUT/runs.tsv"

# one_run CONC ROUND NAME METHOD REQFILE
one_run() {
  local c=$1 round=$2 name=$3 method=$4 req=$5
  local f="$OUT/runs/c${c}_r${round}_${name}.txt"
  wait_quiet
  local l1; l1=$(load1)
  # CPU window strictly inside the measured period: [WARMUP+0.5, WARMUP+DURATION-0.5] s after start
  local win=$((DURATION - 1))
  (
    sleep "$WARMUP.5"
    a=$(ticks); ca=$(cpu01); ta=$(date +%s%N)
    sleep "$win"
    b=$(ticks); cb=$(cpu01); tb=$(date +%s%N)
    echo "$a $b $ta $tb $ca $cb" > "$f.cpu"
  ) &
  local sampler=$!
  local ch0 ch1 tr0 tr1; ch0=$(child_ticks); tr0=$(date +%s%N)
  set +e
  PERCENTILES=1 WARMUP_S=$WARMUP nice -n "$NICE" taskset -c 1 "$LOADER" "127.0.0.1:$PORT" "$method" "$req" 1 "$c" "$DURATION" > "$f" 2>&1
  local rc=$?
  set -e
  ch1=$(child_ticks); tr1=$(date +%s%N)
  wait "$sampler" || true
  (( rc == 0 )) || { tail -20 "$f" >&2; die "grpc-load failed (rc=$rc) for $name at $c in flight"; }
  local res; res=$(grep '^RESULT ' "$f")
  kv() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$res"; }
  local rps p50 p99 p999 mean ok
  rps=$(kv rps); p50=$(kv p50_us); p99=$(kv p99_us); p999=$(kv p999_us); mean=$(kv mean_us); ok=$(kv succeeded)
  local a b ta tb c0a c1a c0b c1b
  read -r a b ta tb c0a c1a c0b c1b < "$f.cpu"
  local row dist
  row=$(awk -v a="$a" -v b="$b" -v ta="$ta" -v tb="$tb" -v rps="$rps" -v hz="$HZ" \
            -v c0a="$c0a" -v c0b="$c0b" -v c1a="$c1a" -v c1b="$c1b" \
            -v cl="$((ch1 - ch0))" -v clsecs="$(( (tr1 - tr0) / 1000000 ))" 'BEGIN{
      secs=(tb-ta)/1e9; cpu=(b-a)/hz; calls=rps*secs
      srv=100*cpu/secs; c0=100*(c0b-c0a)/hz/secs; c1=100*(c1b-c1a)/hz/secs
      other=c0-srv; if (other<0) other=0
      client=100*cl/hz/(clsecs/1000); other1=c1-client; if (other1<0) other1=0
      printf "%.1f\t%.0f\t%.0f\t%.0f\t%.0f", (calls>0 ? cpu*1e6/calls : 0), srv, other, c1, other1 }')
  dist=$(awk -v o="$(cut -f3 <<<"$row")" -v o1="$(cut -f5 <<<"$row")" -v m="$DISTURB_PCT" 'BEGIN{print (o + 0 > m + 0 || o1 + 0 > m + 0) ? 1 : 0}')
  OTHER1=$(cut -f5 <<<"$row"); row=$(cut -f1-4 <<<"$row")
  LAST_DISTURBED=$dist
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$round" "$name" "$rps" "$p50" "$p99" "$p999" "$mean" \
    "$row" "$QUIET_BUSY" "$l1" "$QUIET_WAITED" "$ok" "$dist" >> "$OUT/runs.tsv"
  log "$(printf 'c=%-3s r%s %-22s %10s calls/s  p50 %6s us  p99 %6s us  server CPU %s us/call (%s%% of core 0), other on core 0 %s%%, core 1 %s%% (other %s%%)  [machine %s%% busy before, load %s]%s' \
    "$c" "$round" "$name" "$rps" "$p50" "$p99" $(cut -f1 <<<"$row") $(cut -f2 <<<"$row") $(cut -f3 <<<"$row") $(cut -f4 <<<"$row") "$OTHER1" "$QUIET_BUSY" "$l1" "$( ((dist)) && echo ' DISTURBED')")"
}
# run once; once more if another process used core 0 during the run
run_ab() {
  one_run "$@"
  if (( LAST_DISTURBED )); then log "  repeating (disturbed)"; one_run "$@"; fi
}

for c in $CONCS; do
  for round in $(seq 1 "$ROUNDS"); do
    run_ab "$c" "$round" health /grpc.health.v1.Health/Check "$OUT/empty.bin"
    for r in $REQUESTS; do
      run_ab "$c" "$round" "authorize_$r" /warden.v1.Authorizer/Authorize "$OUT/$r.bin"
    done
    for r in $CHECKS; do
      run_ab "$c" "$round" "$r" /envoy.service.auth.v3.Authorization/Check "$OUT/$r.bin"
    done
  done
  read -r rss hwm < <(mem)
  echo "after_c$c rss_mib=$rss hwm_mib=$hwm" >> "$OUT/memory.txt"
  log "after $c in flight: VmRSS $rss MiB, VmHWM $hwm MiB"
done
curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" > "$OUT/metrics_after.txt" || true

# --- perf (after the measured runs, so it does not perturb them) -----------------------------------------
if [[ $PERF == 1 ]] && command -v perf >/dev/null; then
  first=${REQUESTS%% *}
  log "perf record -g on the server during Authorize($first) at $PERF_CONC in flight"
  PERCENTILES=0 WARMUP_S=1 nice -n "$NICE" taskset -c 1 "$LOADER" "127.0.0.1:$PORT" /warden.v1.Authorizer/Authorize "$OUT/$first.bin" 1 "$PERF_CONC" 8 \
    > "$OUT/perf_load.txt" 2>&1 &
  lp=$!
  sleep 2
  perf record -q -g -F 999 -p "$SERVER_PID" -o "$OUT/perf.data" -- sleep 5 > "$OUT/perf_record.log" 2>&1 || true
  wait "$lp" || true
  if [[ -s $OUT/perf.data ]]; then
    perf report -i "$OUT/perf.data" --stdio --no-children --sort comm,dso,symbol --percent-limit 0.7 -g none 2>/dev/null \
      | grep -v '^$' > "$OUT/perf.txt" || true
    perf report -i "$OUT/perf.data" --stdio --children --sort symbol --percent-limit 3 -g none 2>/dev/null \
      | grep -v '^$' > "$OUT/perf_children.txt" || true
    log "perf: top self symbols ($OUT/perf.txt):"
    grep -E '^ +[0-9]' "$OUT/perf.txt" | head -15 | cut -c1-150 >&2
  fi
  curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" > "$OUT/metrics_after_perf.txt" || true
fi

read -r RSS_END HWM_END < <(mem)
echo "end rss_mib=$RSS_END hwm_mib=$HWM_END" >> "$OUT/memory.txt"

# --- stop: SIGTERM, exit status 0 ---------------------------------------------------------------------------
t0=$(date +%s%N)
kill -TERM "$SERVER_PID"
set +e
wait "$SERVER_PID"
SRV_RC=$?
set -e
STOP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
SERVER_PID=""
log "SIGTERM: server exited with status $SRV_RC after $STOP_MS ms"
echo "sigterm_exit=$SRV_RC stop_ms=$STOP_MS" > "$OUT/stop.txt"

# --- decisions answered (server-side counters) ----------------------------------------------------------------
grep -E '^warden_(requests_total|decision_duration_seconds_count)' "$OUT/metrics_after.txt" > "$OUT/decisions.txt" 2>/dev/null || true

# --- table: per in-flight and call, the median over undisturbed runs (all runs when none was undisturbed) ---
awk -F'\t' -v rss_idle="$RSS_IDLE" -v hwm_end="$HWM_END" -v rss_end="$RSS_END" '
  function med(key, col,   i, j, t, v, m) { m = 0
    for (i = 1; i <= cnt[key]; i++) { v[i] = val[key, i, col]
      for (j = i; j > 1 && v[j - 1] > v[j]; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t } }
    m = cnt[key]; return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  NR == 1 { next }
  { k = $1 SUBSEP $3; tot[k]++
    if (!($1 in seenc)) { seenc[$1] = 1; cs[++nc] = $1 }
    if (!($3 in seenm)) { seenm[$3] = 1; ms[++nm] = $3 }
    all[k, tot[k]] = $0
    if ($17 == 0) { clean[k]++; ck = "c" SUBSEP k; cnt[ck]++; for (f = 4; f <= 10; f++) val[ck, cnt[ck], f] = $f }
    ak = "a" SUBSEP k; cnt[ak]++; for (f = 4; f <= 10; f++) val[ak, cnt[ak], f] = $f
    if (!(k in lo) || $4 + 0 < lo[k]) lo[k] = $4 + 0; if (!(k in hi) || $4 + 0 > hi[k]) hi[k] = $4 + 0
    if ($13 + 0 > maxbusy) maxbusy = $13 + 0 }
  END {
    print "| in flight | call | calls/s median (all runs: min–max) | p50 µs | p99 µs | server CPU µs/call | server core-0 use | runs used | call / Health |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nc; i++) { c = cs[i]
      hk = ((c SUBSEP "health") in clean) ? "c" SUBSEP c SUBSEP "health" : "a" SUBSEP c SUBSEP "health"
      for (j = 1; j <= nm; j++) { m = ms[j]; k = c SUBSEP m; if (!(k in tot)) continue
        key = (k in clean) ? "c" SUBSEP k : "a" SUBSEP k
        r = med(key, 4); ratio = (m == "health") ? "—" : sprintf("**%.3f**", r / med(hk, 4))
        printf "| %s | %s | %.0f (%.0f–%.0f) | %.0f | %.0f | %.1f | %.0f %% | %d of %d%s | %s |\n", c, m, r, lo[k], hi[k], med(key, 5), med(key, 6), med(key, 9), med(key, 10), cnt[key], tot[k], (k in clean) ? "" : " (all disturbed)", ratio } }
    printf "\nRSS: idle %s MiB; after load %s MiB, peak (VmHWM) %s MiB. Machine before a run: up to %.1f %% busy (both cores, our server idle, after waiting); a run is disturbed (and repeated once) when other processes used > '"$DISTURB_PCT"' %% of core 0 or of core 1 during it.\n", rss_idle, rss_end, hwm_end, maxbusy
  }' "$OUT/runs.tsv" > "$OUT/table.md"

{
  echo "# warden server load — $RUN_ID (${LABEL:-as-is})"
  echo
  sed 's/^/    /' "$OUT/env.txt"
  echo
  cat "$OUT/table.md"
  echo
  echo "SIGTERM exit status $SRV_RC after $STOP_MS ms; waited ${waited_total} s in total for the machine to be quiet."
  echo
  echo "Server-side counters after the A/B runs:"
  sed 's/^/    /' "$OUT/decisions.txt"
} > "$OUT/summary.md"
ln -sfn "$RUN_ID" "$ROOT/bench/results/latest"
echo
cat "$OUT/summary.md"
(( SRV_RC == 0 )) || { log "server did not exit 0 on SIGTERM"; exit 1; }
