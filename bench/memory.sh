#!/usr/bin/env bash
# Does memory stay constant as a run gets longer? Runs the M/M/1 workload
# (bench/workloads/mm1.toml) at SMALL messages (default 1,000,000) and at
# LARGE (default 100,000,000: minutes), each as one whole process under
# /usr/bin/time -v, and prints each one's peak resident memory and their
# ratio. Acceptance (issue 17): LARGE's peak within 1.5x of SMALL's.
#
# Usage: bench/memory.sh [--bin PATH] [LARGE [SMALL]]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=""
if [ "${1:-}" = "--bin" ]; then
  bin="$2"
  shift 2
fi
large="${1:-100000000}"
small="${2:-1000000}"
if [ ! -x /usr/bin/time ]; then
  echo "bench/memory.sh: needs /usr/bin/time (GNU time, for -v): on Debian or Ubuntu, \`apt-get install time\`" >&2
  exit 2
fi
if [ -z "$bin" ]; then
  echo ">> building asyncsim (cargo build --release)" >&2
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-target}/release/asyncsim"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
peak() {  # messages -> prints the peak RSS in KiB
  local n=$1
  # About 5 events a message: the default bound of 100M events would stop
  # the run at some 20M messages.
  local cmd=("$bin" bench bench/workloads/mm1.toml --messages "$n" --repeat 1 --no-progress
    --set "run.max_events=$((n * 10 + 1000))")
  echo ">> $(date +%T) mm1 at $n messages: ${cmd[*]}" >&2
  /usr/bin/time -v "${cmd[@]}" >"$work/out-$n" 2>"$work/time-$n" || { cat "$work/out-$n" "$work/time-$n" >&2; exit 1; }
  sed -n 2p "$work/out-$n" >&2
  awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time-$n"
}
a=$(peak "$small")
echo ">> the next takes about $((large / small)) times as long" >&2
b=$(peak "$large")
awk -v s="$small" -v l="$large" -v a="$a" -v b="$b" 'BEGIN {
  printf "mm1 %12d messages: peak %8.1f MB\n", s, a / 1024
  printf "mm1 %12d messages: peak %8.1f MB\n", l, b / 1024
  printf "ratio: %.2f (acceptance: at most 1.50)\n", b / a
}'
