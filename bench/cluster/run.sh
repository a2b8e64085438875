#!/usr/bin/env bash
# Cost per message of a log cluster against the single-node log broker:
# runs single.toml, cluster3.toml and cluster9.toml (see README.md here)
# REPS times each, interleaved, and prints per file the median whole-process
# wall time, the cost per message produced, the events, and the peak
# resident memory (all from `/usr/bin/time -v` and the run's summary.json).
#
# Usage: bench/cluster/run.sh [--bin PATH] [REPS]   (default: 3 repetitions)
set -euo pipefail
cd "$(dirname "$0")"
bin=../../target/release/asyncsim
if [ "${1:-}" = "--bin" ]; then
  bin="$2"
  shift 2
fi
reps="${1:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
files="single cluster3 cluster9"
for r in $(seq 1 "$reps"); do
  for f in $files; do
    /usr/bin/time -v "$bin" run "$f.toml" --no-plots --no-progress --out "$work/$f" \
      >/dev/null 2>"$work/$f-$r.time"
  done
done
printf '%-10s %8s %10s %9s %10s %9s\n' file "wall s" "us/msg" events "us/event" "peak MB"
for f in $files; do
  walls=$(for r in $(seq 1 "$reps"); do
    awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$work/$f-$r.time"
  done | sort -n)
  wall=$(echo "$walls" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  kb=$(for r in $(seq 1 "$reps"); do awk -F': ' '/Maximum resident/ { print $2 }' "$work/$f-$r.time"; done | sort -n | tail -1)
  read -r produced events < <(python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['variants']['default']; print(v['produced'], v['run']['events'])" "$work/$f/summary.json")
  awk -v f="$f" -v w="$wall" -v p="$produced" -v e="$events" -v kb="$kb" \
    'BEGIN { printf "%-10s %8.2f %10.1f %9d %10.2f %9.0f\n", f, w, w * 1e6 / p, e, w * 1e6 / e, kb / 1024 }'
done
