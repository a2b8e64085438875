#!/usr/bin/env bash
# Checks that every bundled scenario's expectations hold at many seeds, not
# only at the scenario's own: runs each scenario at seeds 1 to N (default 20)
# and lists every (scenario, seed) whose expectations failed (exit 1) or
# whose run failed otherwise. Exits 1 if any did.
#
# Usage: scripts/check-seeds.sh [--seeds N] [--bin PATH] [SCENARIO.toml...]
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=20
bin=""
files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    -*) echo "usage: $0 [--seeds N] [--bin PATH] [SCENARIO.toml...]" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/asyncsim
fi
[ ${#files[@]} -gt 0 ] || files=(scenarios/*.toml)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
runs=0
for file in "${files[@]}"; do
  name=$(basename "$file" .toml)
  for seed in $(seq 1 "$seeds"); do
    runs=$((runs + 1))
    status=0
    "$bin" run "$file" --seed "$seed" --out "$work/$name-$seed" --no-plots --no-progress \
      >"$work/stdout" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
      failed=$((failed + 1))
      echo "FAIL $name seed $seed (exit $status):"
      grep -E '^  FAIL|error' "$work/stdout" | sed 's/^/    /' || true
    fi
    rm -rf "$work/$name-$seed"
  done
done
echo "$runs runs, $failed failed"
[ "$failed" -eq 0 ]
