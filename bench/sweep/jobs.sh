#!/usr/bin/env bash
# Does a sweep use both cores? Runs the sweep of issue 16's acceptance, 10
# points x 20 seeds (M/M/1, 50,000 messages a run, arrival rates
# 500..950:10: 200 runs), with --jobs 1 and --jobs 2, REPS times each,
# interleaved; prints each one's median wall time and CPU time, the ratio
# of the medians (acceptance: at most 0.6), and checks that both wrote the
# same bytes. Run it on an otherwise idle machine: on a busy one the
# process gets the same share of the CPUs whatever its thread count, and
# the ratio says nothing.
#
# Usage: bench/sweep/jobs.sh [--bin PATH] [REPS]   (default: 3 repetitions)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release/asyncsim
if [ "${1:-}" = "--bin" ]; then
  bin="$2"
  shift 2
fi
reps="${1:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for r in $(seq 1 "$reps"); do
  for j in 1 2; do
    /usr/bin/time -f '%e %U %S' -o "$work/time-$j-$r" "$bin" --no-progress sweep scenarios/mm1.toml \
      --set producers.producer.messages=50000 --set 'producers.producer.arrival.rate_per_s=500..950:10' \
      --seeds 20 --jobs "$j" --out "$work/out-$j" >/dev/null
  done
done
diff -r "$work/out-1" "$work/out-2" >/dev/null && same=yes || same=NO
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
w1=$(for r in $(seq 1 "$reps"); do awk '{ print $1 }' "$work/time-1-$r"; done | median)
w2=$(for r in $(seq 1 "$reps"); do awk '{ print $1 }' "$work/time-2-$r"; done | median)
c1=$(for r in $(seq 1 "$reps"); do awk '{ print $2 + $3 }' "$work/time-1-$r"; done | median)
c2=$(for r in $(seq 1 "$reps"); do awk '{ print $2 + $3 }' "$work/time-2-$r"; done | median)
echo "--jobs 1: wall ${w1} s, cpu ${c1} s"
echo "--jobs 2: wall ${w2} s, cpu ${c2} s"
awk -v a="$w1" -v b="$w2" 'BEGIN { printf "wall ratio (2 jobs / 1 job): %.2f (acceptance: at most 0.60)\n", b / a }'
echo "identical output: $same"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
