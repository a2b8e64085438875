#!/usr/bin/env bash
# Regenerates the plots the README shows (docs/img/), from a real run of a
# bundled scenario with its own seed. tests/report.rs checks that they are
# what this script would write, byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/asyncsim
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" run scenarios/network-faults.toml --out "$out/run" --no-progress >/dev/null
mkdir -p docs/img
cp "$out/run/latency-cdf.png" docs/img/network-faults-latency-cdf.png
cp "$out/run/depth-lag.png" docs/img/network-faults-depth-lag.png
echo "wrote docs/img/network-faults-latency-cdf.png and docs/img/network-faults-depth-lag.png"
