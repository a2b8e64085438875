#!/usr/bin/env bash
# Proves a change preserves behaviour: runs every bundled scenario at seeds
# 1 to 5 and compares each summary.json, byte for byte, with the reference
# stored in tests/reference/. `--update` rewrites the references (do that
# only in a commit that changes behaviour on purpose, and say why).
#
# Usage: scripts/compare-summaries.sh [--update] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."

update=0
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=1 ;;
    --bin) bin="$2"; shift ;;
    *) echo "usage: $0 [--update] [--bin PATH]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/asyncsim
fi

ref=tests/reference
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$ref"

changed=0
checked=0
for file in scenarios/*.toml; do
  name=$(basename "$file" .toml)
  for seed in 1 2 3 4 5; do
    out="$work/$name-$seed"
    # Exit 1 (an expectation failed at this seed) is a result like any other.
    status=0
    "$bin" run "$file" --seed "$seed" --out "$out" --no-plots >/dev/null 2>"$work/stderr" || status=$?
    if [ "$status" -gt 1 ]; then
      echo "FAILED to run: $file --seed $seed (exit $status)" >&2
      cat "$work/stderr" >&2
      exit 2
    fi
    stored="$ref/$name-seed$seed.json"
    checked=$((checked + 1))
    if [ "$update" = 1 ]; then
      cp "$out/summary.json" "$stored"
    elif ! cmp -s "$out/summary.json" "$stored"; then
      changed=$((changed + 1))
      echo "DIFFERS: $name --seed $seed" >&2
      diff "$stored" "$out/summary.json" | head -20 >&2 || true
    fi
  done
done

if [ "$update" = 1 ]; then
  echo "updated $checked references in $ref"
elif [ "$changed" -gt 0 ]; then
  echo "$changed of $checked summaries differ from the references" >&2
  exit 1
else
  echo "all $checked summaries identical to the references"
fi
