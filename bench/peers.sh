#!/usr/bin/env bash
# asyncsim against the shared peer simulators on one workload, the M/M/1 of
# ../shared/bench (utilisation 0.9, N messages), in the same run: each
# engine runs RUNS whole processes (default 5), interleaved (the repetition
# loop is the outer one, so the machine's noise falls on every engine
# alike), under /usr/bin/time -v. Prints per engine the median
# whole-process wall time, N / that time, the peak resident memory, and
# the ratios issue 17 asks for:
#
#   asyncsim msgs/s / NeXosim's (1 thread)   acceptance: at least 3
#   asyncsim msgs/s / SimPy's                acceptance: at least 30
#   asyncsim wall / the hand-rolled floor's  acceptance: at most 3
#
# What it does first (once; later runs reuse it):
#   - copies the peers from PEERS (default ../shared/bench, relative to the
#     repository root; read-only there) into target/peers/;
#   - builds heap_floor and nexosim_mm1 there with `cargo build --release`,
#     each into its own target folder (crates from crates.io);
#   - makes a Python venv at target/peers/.venv with requirements.txt
#     (simpy, ciw and their dependencies, from PyPI);
#   - builds asyncsim (`cargo build --release`) unless --bin names a binary.
#
# Usage: bench/peers.sh [--bin PATH] [--runs R] [--messages N] [--ciw]
#   --ciw adds Ciw (about 40 s and 800 MB a run at N = 1,000,000).
# Raw outputs are kept in target/peers/raw/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=""
runs=5
n=1000000
ciw=no
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --messages) n="$2"; shift 2 ;;
    --ciw) ciw=yes; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/peers.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
  esac
done
case "$runs$n" in *[!0-9]*) echo "bench/peers.sh: --runs and --messages take whole numbers" >&2; exit 2 ;; esac
if [ "$runs" -lt 1 ] || [ "$n" -lt 1 ]; then
  echo "bench/peers.sh: --runs and --messages must be at least 1" >&2
  exit 2
fi
if [ ! -x /usr/bin/time ]; then
  echo "bench/peers.sh: needs /usr/bin/time (GNU time, for -v): on Debian or Ubuntu, \`apt-get install time\`" >&2
  exit 2
fi
peers="${PEERS:-../shared/bench}"
if [ ! -f "$peers/requirements.txt" ] || [ ! -d "$peers/peers/heap_floor" ]; then
  echo "bench/peers.sh: no peers at $peers (set PEERS=DIR to the folder holding requirements.txt and peers/)" >&2
  exit 2
fi

work=target/peers
mkdir -p "$work/raw"
echo ">> copying the peers from $peers into $work" >&2
for p in heap_floor nexosim_mm1; do
  # Only what changed is copied, so an unchanged peer is not rebuilt.
  mkdir -p "$work/$p"
  cp -r --update "$peers/peers/$p/src" "$work/$p/"
  chmod -R u+w "$work/$p"
  # Its own workspace, not a stray member of asyncsim's.
  { cat "$peers/peers/$p/Cargo.toml"; printf '\n[workspace]\n'; } >"$work/$p/Cargo.toml.new"
  if cmp -s "$work/$p/Cargo.toml.new" "$work/$p/Cargo.toml"; then
    rm "$work/$p/Cargo.toml.new"
  else
    mv "$work/$p/Cargo.toml.new" "$work/$p/Cargo.toml"
  fi
done
cp "$peers/peers/simpy_mm1.py" "$peers/peers/ciw_mm1.py" "$peers/requirements.txt" "$work/"
chmod u+w "$work"/*.py "$work/requirements.txt"

for p in heap_floor nexosim_mm1; do
  echo ">> building $p (cargo build --release)" >&2
  (cd "$work/$p" && CARGO_TARGET_DIR="$root/$work/$p/target" cargo build --release --quiet)
done
venv="$work/.venv"
if ! cmp -s "$work/requirements.txt" "$venv/requirements.installed" 2>/dev/null; then
  echo ">> making the venv $venv (simpy, ciw)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$work/requirements.txt"
  cp "$work/requirements.txt" "$venv/requirements.installed"
fi
if [ -z "$bin" ]; then
  echo ">> building asyncsim (cargo build --release)" >&2
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-target}/release/asyncsim"
fi
[ -x "$bin" ] || { echo "bench/peers.sh: no asyncsim binary at $bin" >&2; exit 2; }

hf="$work/heap_floor/target/release/heap_floor"
nx="$work/nexosim_mm1/target/release/nexosim_mm1"
py="$venv/bin/python"
engines="heap_floor nexosim simpy asyncsim"
[ "$ciw" = yes ] && engines="heap_floor nexosim simpy ciw asyncsim"
rm -f "$work"/raw/*.txt
for r in $(seq 1 "$runs"); do
  for e in $engines; do
    echo ">> $(date +%T) run $r of $runs: $e, N = $n" >&2
    case "$e" in
      heap_floor) cmd=("$hf" "$n" 42) ;;
      nexosim) cmd=("$nx" "$n" 42 1) ;;
      simpy) cmd=("$py" "$work/simpy_mm1.py" "$n" 42) ;;
      ciw) cmd=("$py" "$work/ciw_mm1.py" "$n" 42) ;;
      asyncsim) cmd=("$bin" bench bench/workloads/mm1.toml --messages "$n" --repeat 1 --no-progress) ;;
    esac
    /usr/bin/time -v "${cmd[@]}" >"$work/raw/$e-$r.txt" 2>&1 || {
      echo "bench/peers.sh: $e failed; its output:" >&2
      cat "$work/raw/$e-$r.txt" >&2
      exit 1
    }
  done
done

python3 - "$work/raw" "$n" "$runs" $engines <<'EOF'
import re, statistics, sys
raw, n, runs, engines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
def read(e, r):
    text = open(f"{raw}/{e}-{r}.txt").read()
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    wall = 0.0
    for part in clock.split(":"):
        wall = wall * 60 + float(part)
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return wall, kib
names = {"heap_floor": "hand-rolled floor", "nexosim": "NeXosim 1 thread", "simpy": "SimPy", "ciw": "Ciw", "asyncsim": "asyncsim"}
rows = {}
print(f"M/M/1 at utilisation 0.9, N = {n:,} messages; median of {runs} whole processes, interleaved")
print(f"{'engine':<20} {'wall s':>8} {'msgs/s':>12} {'peak MB':>8}   walls")
for e in engines:
    got = [read(e, r) for r in range(1, runs + 1)]
    wall = statistics.median(w for w, _ in got)
    mb = max(k for _, k in got) / 1024
    rows[e] = wall
    walls = " ".join(f"{w:.2f}" for w, _ in got)
    print(f"{names[e]:<20} {wall:>8.3f} {n / wall:>12,.0f} {mb:>8.1f}   {walls}")
a = rows["asyncsim"]
print()
print(f"asyncsim msgs/s / NeXosim's: {rows['nexosim'] / a:6.2f}  (acceptance: at least 3)")
print(f"asyncsim msgs/s / SimPy's:   {rows['simpy'] / a:6.2f}  (acceptance: at least 30)")
if "ciw" in rows:
    print(f"asyncsim msgs/s / Ciw's:     {rows['ciw'] / a:6.2f}")
print(f"asyncsim wall / floor wall:  {a / rows['heap_floor']:6.2f}  (acceptance: at most 3)")
EOF
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
