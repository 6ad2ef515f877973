#!/usr/bin/env bash
# End-to-end timing of `assay check` on a generated 10,000-line spec (release build).
# Usage: bench/check-large-spec.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-10000}
cargo build --release -q -p assay-cli
spec=$(mktemp --suffix .assay)
trap 'rm -f "$spec"' EXIT
python3 bench/gen_spec.py "$lines" > "$spec"
echo "spec: $(wc -l < "$spec") lines, $(wc -c < "$spec") bytes"
./target/release/assay check "$spec"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 3 --runs 20 "./target/release/assay check $spec"
else
  for _ in 1 2 3; do /usr/bin/time -f "%e s, %M KiB max RSS" ./target/release/assay check "$spec" 2>&1 | tail -1; done
fi
