#!/usr/bin/env bash
# End-to-end benchmark: hopscope's full report on ~1 GB of generated logs,
# against the scan limits (wc -l, rg) and DuckDB running the same report in
# hand-written SQL (bench/duckdb.sql). See bench/README.md.
#
# usage: bench/run.sh [--linear] [--runs N] [--size SIZE] [--no-pgo] [--no-save]
#   --linear   also time hopscope on 2 GB (bench/data-2g) for a linearity check
#   --runs N   run N rounds of every command; fastest and median kept (default 1)
#   --size S   size of the main data set (default 1GB; cached per size)
#   --no-pgo   do not build and time the profile-guided build (bench/pgo.sh)
#   --no-save  do not write the table to bench/runs/
set -euo pipefail
cd "$(dirname "$0")/.."

LINEAR=0
RUNS=1
SIZE=1GB
SAVE=1
PGO=1
while [ $# -gt 0 ]; do
  case "$1" in
    --linear) LINEAR=1 ;;
    --runs) RUNS="$2"; shift ;;
    --size) SIZE="$2"; shift ;;
    --no-save) SAVE=0 ;;
    --no-pgo) PGO=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

SEED=1
THREADS=$(nproc)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
say() { echo "bench: $*" >&2; }
# calc EXPR [DECIMALS]: floating-point arithmetic without bc.
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

# --- tools -----------------------------------------------------------------
apt_install() {
  say "installing $1 with apt-get"
  apt-get install -y "$1" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$1" >/dev/null; }
}
[ -x /usr/bin/time ] || apt_install time
command -v rg >/dev/null || apt_install ripgrep
command -v vmtouch >/dev/null || apt_install vmtouch || true
VENV=bench/.venv
if ! "$VENV/bin/python" -c 'import duckdb' >/dev/null 2>&1; then
  say "installing duckdb into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet duckdb
fi
PY="$VENV/bin/python"
DUCKDB_VERSION=$("$PY" -c 'import duckdb; print(duckdb.__version__)')

say "building (release)"
cargo build --release --quiet --bin hopscope --example gen_logs
HOPSCOPE=target/release/hopscope
GEN=target/release/examples/gen_logs
if [ "$PGO" = 1 ]; then
  say "building the profile-guided hopscope (bench/pgo.sh)"
  # Without rustup's llvm-tools (a distribution's Rust, no network) there
  # is no PGO build; the standard build is still measured.
  if ! bench/pgo.sh; then
    say "the profile-guided build failed; timing the standard build only"
    PGO=0
  fi
fi

# --- data ------------------------------------------------------------------
# bench/data-<size>/{logs/,truth.json}; truth.json is written last, so its
# presence means the data set is complete.
dataset() {
  local size=$1 dir
  dir="bench/data-$(echo "$size" | tr '[:upper:]' '[:lower:]' | sed 's/b$//')"
  if [ ! -f "$dir/truth.json" ]; then
    say "generating $size of --rich logs into $dir"
    rm -rf "$dir/logs"
    mkdir -p "$dir"
    "$GEN" --out "$dir" --size "$size" --seed "$SEED" --rich
    # hopscope streams files changed in the last 30 s instead of mapping
    # them (a live log may be truncated under it); aged by a minute,
    # fresh data is measured the way it is on every later run.
    find "$dir" -type f -exec touch -d "@$(($(date +%s) - 60))" {} +
  fi
  echo "$dir"
}
DATA=$(dataset "$SIZE")
DATA2=""
if [ "$LINEAR" = 1 ]; then DATA2=$(dataset 2GB); fi

mapfile -t FILES < <(find "$DATA/logs" -type f | sort)
BYTES=$(stat -c %s "${FILES[@]}" | awk '{ s += $1 } END { print s }')
LINES=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["lines"])' "$DATA/truth.json")
REQUESTS=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["total"])' "$DATA/truth.json")

# --- measuring -------------------------------------------------------------
# Commands are registered with `add`, then run in rounds: every round runs
# each command once, so a noisy stretch of a shared machine slows all of
# them rather than the few that happened to run in it. Per command the
# fastest wall time, the median and the largest peak RSS are kept. The
# files a command reads are read right before each of its runs: some
# virtual machines give idle page-cache pages back to the host within
# seconds, and a run that reads from disk measures the disk.
declare -A WALL MED RSS TIMES CMD OUTF READS
ORDER=()
# add NAME OUTFILE READDIR CMD...: registers CMD (stdout to OUTFILE).
add() {
  local name=$1
  ORDER+=("$name")
  OUTF[$name]=$2
  READS[$name]=$3
  shift 3
  CMD[$name]=$(printf '%q ' "$@")
  TIMES[$name]=""
  RSS[$name]=0
}
run_once() {
  local name=$1 t0 t1 w r
  find "${READS[$name]}" -type f -exec cat {} + >/dev/null
  t0=$(date +%s%N)
  eval "/usr/bin/time -v -o \"\$TMP/time\" ${CMD[$name]}" >"${OUTF[$name]}"
  t1=$(date +%s%N)
  w=$(( (t1 - t0) / 1000000 ))
  r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
  TIMES[$name]="${TIMES[$name]} $w"
  if [ "$r" -gt "${RSS[$name]}" ]; then RSS[$name]=$r; fi
}
run_rounds() {
  local i n
  for ((i = 1; i <= RUNS; i++)); do
    say "round $i of $RUNS"
    for n in "${ORDER[@]}"; do run_once "$n"; done
  done
  for n in "${ORDER[@]}"; do
    # The fastest and the median (the mean of the middle two for an even count).
    read -r "WALL[$n]" "MED[$n]" < <(echo "${TIMES[$n]}" | tr ' ' '\n' | grep . | sort -n |
      awk '{ v[NR] = $1 } END { print v[1], (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    say "$(printf '%-34s fastest %6.2f s  median %6.2f s  %6d MB' "$n" "$(calc "${WALL[$n]} / 1000")" "$(calc "${MED[$n]} / 1000")" $((${RSS[$n]} / 1024)))"
  done
}

# warm DIR...: reads the DIRs' files into the page cache and, where vmtouch
# can, locks them there until the end: some virtual machines give idle
# page-cache pages back to the host within seconds (a quarter of 2 GB in
# 20 s on this project's VM), so a "warm" run would otherwise read part of
# its input from disk. Reading before every run (in run_once) stays as the
# fallback without vmtouch.
LOCK_PID="$TMP/vmtouch.pid"
CACHE_NOTE="re-read before every run"
unlock() {
  if [ -s "$LOCK_PID" ]; then kill "$(cat "$LOCK_PID")" 2>/dev/null || true; rm -f "$LOCK_PID"; fi
}
trap 'unlock; rm -rf "$TMP"' EXIT
warm() {
  say "warming the page cache ($*)"
  unlock
  find "$@" -type f -exec cat {} + >/dev/null
  if command -v vmtouch >/dev/null; then
    if vmtouch -q -d -l -w -P "$LOCK_PID" "$@"; then
      CACHE_NOTE="re-read before every run and locked with vmtouch"
    else
      say "vmtouch could not lock $*; reading it before every run instead"
    fi
  fi
}

# DuckDB: bench/duckdb.sql with __LOGS__ replaced, statements in order,
# the rows of the final SELECTs written as JSON (for the agreement check).
cat >"$TMP/duckdb_run.py" <<'PY'
import json, re, sys
import duckdb
sql_path, logs, out = sys.argv[1:4]
sql = open(sql_path).read().replace("__LOGS__", logs)
sql = "\n".join(l for l in sql.splitlines() if not l.lstrip().startswith("--"))
con = duckdb.connect()
res = {}
for stmt in (s.strip() for s in re.split(r";\s*(?:\n|$)", sql)):
    if not stmt:
        continue
    cur = con.execute(stmt)
    cols = [d[0] for d in cur.description or []]
    if cols[:1] == ["row_kind"]:
        for row in cur.fetchall():
            res.setdefault(row[0], []).append(dict(zip(cols, row)))
json.dump(res, open(out, "w"), indent=1, default=str)
PY

DUCK="DuckDB $DUCKDB_VERSION (SET threads=2)"
HS="hopscope report ($THREADS threads)"
HSP="hopscope report, PGO build ($THREADS threads)"
H2="hopscope report, 2 GB ($THREADS threads)"
add "wc -l" "$TMP/wc.txt" "$DATA/logs" wc -l "${FILES[@]}"
add "rg -c request_id" "$TMP/rg.txt" "$DATA/logs" rg -c request_id "${FILES[@]}"
add "$HS" "$TMP/report.json" "$DATA/logs" "$HOPSCOPE" report "$DATA/logs" -o json
if [ "$PGO" = 1 ]; then
  add "$HSP" "$TMP/report_pgo.json" "$DATA/logs" target/pgo/hopscope report "$DATA/logs" -o json
fi
add "hopscope report --threads 1" "$TMP/report1.json" "$DATA/logs" "$HOPSCOPE" report "$DATA/logs" -o json --threads 1
add "$DUCK" "$TMP/duckdb.out" "$DATA/logs" "$PY" "$TMP/duckdb_run.py" bench/duckdb.sql "$DATA/logs/*/*.log*" "$TMP/duckdb.json"
if [ -n "$DATA2" ]; then
  BYTES2=$(find "$DATA2/logs" -type f -exec stat -c %s {} + | awk '{ s += $1 } END { print s }')
  add "$H2" "$TMP/report2.json" "$DATA2/logs" "$HOPSCOPE" report "$DATA2/logs" -o json
  warm "$DATA/logs" "$DATA2/logs"
else
  warm "$DATA/logs"
fi
run_rounds

# --- agreement with the generator's truth ------------------------------------
AGREE=$("$PY" - "$DATA/truth.json" "$TMP/report.json" "$TMP/report1.json" "$TMP/duckdb.json" "$TMP/report_pgo.json" <<'PY'
import json, os, sys
truth, rep, rep1, duck = (json.load(open(p)) for p in sys.argv[1:5])
def close(got, want, exact=False):
    if got is None or want is None:
        return got is None and want is None
    return got == want if exact else abs(got - want) <= max(abs(want) * 0.01, 0.001) + 1e-9
def check_hopscope(r):
    bad = []
    for k in ("total", "failed", "root_failed"):
        if r["requests"][k] != truth["requests"][k]:
            bad.append(f"requests.{k}")
    for t in truth["services"]:
        s = next((x for x in r["services"] if x["service"] == t["service"]), None)
        if s is None:
            bad.append(t["service"]); continue
        for k in ("visits", "failed"):
            if s[k] != t[k]: bad.append(f'{t["service"]}.{k}')
        if t["processing_ms"]:
            for q in ("p50", "p90", "p99", "mean", "max"):
                if not close(s["processing_ms"][q], t["processing_ms"][q]): bad.append(f'{t["service"]}.processing.{q}')
    for t in truth["hops"]:
        h = next((x for x in r["hops"] if x["from"] == t["from"] and x["to"] == t["to"]), None)
        name = f'{t["from"]}>{t["to"]}'
        if h is None:
            bad.append(name); continue
        for k in ("calls", "failed"):
            if h[k] != t[k]: bad.append(f"{name}.{k}")
        for b in ("processing_ms", "propagation_ms", "call_ms"):
            if (h[b] is None) != (t[b] is None): bad.append(f"{name}.{b}"); continue
            if t[b]:
                for q in ("p50", "p90", "p99", "mean", "max"):
                    if not close(h[b][q], t[b][q]): bad.append(f"{name}.{b}.{q}")
    return bad
def check_duckdb():
    bad = []
    svc = {s["name"]: s for s in duck.get("service", [])}
    hop = {h["name"]: h for h in duck.get("hop", [])}
    req = (duck.get("requests") or [{}])[0]
    for k in ("total", "failed", "root_failed"):
        if req.get(k) != truth["requests"][k]: bad.append(f"requests.{k}")
    qs = ("p50", "p90", "p99")
    for t in truth["services"]:
        s = svc.get(t["service"])
        if s is None:
            bad.append(t["service"]); continue
        for k in ("visits", "failed"):
            if s[k] != t[k]: bad.append(f'{t["service"]}.{k}')
        if t["processing_ms"]:
            for q, v in zip(qs, s["processing_us"]):
                if not close(v / 1000, t["processing_ms"][q]): bad.append(f'{t["service"]}.processing.{q}')
    for t in truth["hops"]:
        name = f'{t["from"]}>{t["to"]}'
        h = hop.get(name)
        if h is None:
            bad.append(name); continue
        for k in ("calls", "failed"):
            if h[k] != t[k]: bad.append(f"{name}.{k}")
        for col, b in (("processing_us", "processing_ms"), ("propagation_us", "propagation_ms"), ("call_us", "call_ms")):
            if t[b] and h[col]:
                for q, v in zip(qs, h[col]):
                    if not close(v / 1000, t[b][q]): bad.append(f"{name}.{b}.{q}")
            elif bool(t[b]) != bool(h[col]):
                bad.append(f"{name}.{b}")
    return bad
for name, bad in (("hopscope", check_hopscope(rep)), ("hopscope --threads 1", check_hopscope(rep1)), ("DuckDB", check_duckdb())):
    verdict = "agrees with truth.json" if not bad else f"{len(bad)} figure(s) off truth.json: {', '.join(bad[:8])}"
    print(f"- {name}: {verdict}")
same = json.dumps(rep, sort_keys=True) == json.dumps(rep1, sort_keys=True)
print(f"- hopscope's JSON with --threads 1 {'is identical to' if same else 'DIFFERS from'} the all-threads run")
if os.path.exists(sys.argv[5]):
    same = open(sys.argv[5], "rb").read() == open(sys.argv[2], "rb").read()
    print(f"- the PGO build's JSON {'is byte-identical to' if same else 'DIFFERS from'} the standard build's")
PY
)

# --- table -----------------------------------------------------------------
fmt_row() {
  local name=$1 bytes=$2 w=${WALL[$1]} m=${MED[$1]} r=${RSS[$1]}
  local s med mbs lps vs
  s=$(calc "$w / 1000" 3)
  med=$(calc "$m / 1000" 3)
  mbs=$(calc "$bytes / 1000 / $w" 0)
  lps=$(calc "$LINES / ($w / 1000) / 1000000" 2)
  vs=$(calc "$w / ${WALL[$HS]}" 2)
  printf '| %s | %s | %s | %s | %s M | %s | %s× |\n' "$name" "$s" "$med" "$mbs" "$lps" "$((r / 1024))" "$vs"
}
# ratio A B: A's time over B's, fastest runs then medians.
ratio() { echo "$(calc "${WALL[$1]} / ${WALL[$2]}" 2)× (medians $(calc "${MED[$1]} / ${MED[$2]}" 2)×)"; }
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git status --porcelain -- src Cargo.toml 2>/dev/null | grep -q . && echo "+dirty" || true)
{
  echo "## hopscope benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "- machine: $(hostname), $THREADS cores ($CPU), $(free -g | awk '/Mem:/ {print $2}') GB RAM; hopscope $("$HOPSCOPE" --version 2>/dev/null | awk '{print $2}') at $REV$DIRTY"
  echo "- data: $DATA, $(calc "$BYTES / 1000000000" 2) GB, $LINES lines, $REQUESTS requests, ${#FILES[@]} files (gen_logs --rich --seed $SEED), page cache warm ($CACHE_NOTE)"
  echo "- $RUNS round(s), each running every command once; fastest and median wall time; MB/s and lines/s from the fastest; peak RSS from /usr/bin/time -v"
  echo
  echo "| command | fastest s | median s | MB/s | lines/s | peak RSS MB | fastest vs hopscope |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for n in "${ORDER[@]}"; do
    if [[ "$n" == *"2 GB"* ]]; then
      continue
    fi
    fmt_row "$n" "$BYTES"
  done
  echo
  echo "- hopscope vs DuckDB: DuckDB takes $(ratio "$DUCK" "$HS") hopscope's time"
  if [ "$PGO" = 1 ]; then
    echo "- hopscope's PGO build vs DuckDB: DuckDB takes $(ratio "$DUCK" "$HSP") its time; vs rg -c: it takes $(ratio "$HSP" "rg -c request_id") rg's time; vs the standard build: $(ratio "$HS" "$HSP")"
  fi
  echo "- hopscope vs rg -c: hopscope takes $(ratio "$HS" "rg -c request_id") rg's time, $(ratio "$HS" "wc -l") wc -l's"
  echo "- hopscope 1 thread vs $THREADS: speed-up $(ratio "hopscope report --threads 1" "$HS")"
  if [ -n "$DATA2" ]; then
    echo "- linearity: 2 GB ($(calc "$BYTES2 / 1000000000" 2) GB) in $(calc "${WALL[$H2]} / 1000" 3) s (median $(calc "${MED[$H2]} / 1000" 3) s), $(calc "$BYTES2 / 1000 / ${WALL[$H2]}" 0) MB/s, peak RSS $((${RSS[$H2]} / 1024)) MB; time ratio 2 GB / 1 GB = $(ratio "$H2" "$HS") (size ratio $(calc "$BYTES2 / $BYTES" 2))"
  fi
  echo
  echo "Agreement (counts exact; quantiles, means and maxima within 1 % or 1 µs; DuckDB's quantile_disc vs nearest rank):"
  echo
  echo "$AGREE"
} >"$TMP/table.md"

echo
cat "$TMP/table.md"
if [ "$SAVE" = 1 ]; then
  mkdir -p bench/runs
  OUT="bench/runs/$(date -u +%Y-%m-%d)-$(hostname).md"
  if [ -s "$OUT" ]; then echo >>"$OUT"; fi
  cat "$TMP/table.md" >>"$OUT"
  say "appended to $OUT"
fi
