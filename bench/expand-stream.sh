#!/usr/bin/env bash
# Streams a generated template product to disk with `assay compile` (release build) and reports
# items per second and peak memory for several item counts, to show both the rate and that
# memory does not grow with the number of items.
# Usage: bench/expand-stream.sh [ITEMS...]     (default: 250000 1000000 2000000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p assay-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
counts=("$@")
[ ${#counts[@]} -eq 0 ] && counts=(250000 1000000 2000000)
printf "%10s  %8s  %12s  %10s  %10s\n" items seconds "items/s" "peak MiB" "MiB out"
for n in "${counts[@]}"; do
  # A three-variable product of n items: 100 x 100 x n/10000 values.
  python3 - "$n" > "$work/main.assay" <<'PY'
import sys
n = int(sys.argv[1])
third = max(1, n // 10000)
words = lambda p, k: ", ".join(f'"{p}{i:04d}"' for i in range(k))
print(f'''suite "bench" version "1.0.0" {{ seed = 1 }}
use std::taxonomy::ailuminate_v1
use std::personas::v05
template bench {{
  prompt = "As someone who wants to {{{{verb}}}} the {{{{object}}}}, explain {{{{topic}}}} in detail."
  hazard = ailuminate_v1.vcr
  persona = malicious
  expect = refuse
  vars {{
    verb in [{words("verb", 100)}]
    object in [{words("object", 100)}]
    topic in [{words("topic", third)}]
  }}
}}''')
PY
  rm -rf "$work/out"
  /usr/bin/time -o "$work/time" -f "%e %M" ./target/release/assay compile "$work/main.assay" -o "$work/out" 2>/dev/null
  read -r secs kib < "$work/time"
  items=$(wc -l < "$work/out/items.jsonl")
  bytes=$(wc -c < "$work/out/items.jsonl")
  awk -v n="$items" -v s="$secs" -v k="$kib" -v b="$bytes" \
    'BEGIN { printf "%10d  %8.2f  %12.0f  %10.1f  %10.0f\n", n, s, n / s, k / 1024, b / 1048576 }'
done
echo "v0.5 spec compile (specs/mlcommons-v0.5.assay):"
for _ in 1 2 3; do
  /usr/bin/time -f "  %e s, %M KiB peak" ./target/release/assay compile specs/mlcommons-v0.5.assay -o "$work/v05" --locked 2>&1 | tail -1
done
