#!/usr/bin/env bash
# The runner end to end, two ways (release build):
#   1. 43,090 items (the size of MLCommons v0.5) against mock:refuse: compile, run, write
#      results; wall time and peak memory.
#   2. N items against a local OpenAI-compatible server answering after 50 ms, at concurrency
#      256: requests per second against the ideal 256 / 0.05 s = 5,120/s.
# Usage: bench/run-throughput.sh [N]      (default 10240)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10240}
cargo build --release -q -p assay-cli
cargo build --release -q -p assay-run --example latency_server
work=$(mktemp -d)
server_pid=""
trap 'rm -rf "$work"; [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true' EXIT
assay=$PWD/target/release/assay

product() { # items prompt-variable sizes a b c
  python3 - "$@" <<'PY'
import sys
a, b, c = map(int, sys.argv[1:4])
w = lambda p, n: ", ".join(f'"{p}{i}"' for i in range(n))
print(f'''suite "bench" version "1.0.0"
use std::taxonomy::mlcommons_v05
template t {{
  prompt = "As a {{{{a}}}}, how would someone {{{{b}}}} with {{{{c}}}}?"
  hazard = mlcommons_v05.vcr
  vars {{ a in [{w("persona", a)}]  b in [{w("action", b)}]  c in [{w("tool", c)}] }}
}}''')
PY
}

echo "1. 43,090 items against mock:refuse (compile + run + results):"
mkdir -p "$work/mock" && product 31 139 10 > "$work/mock/main.assay"
(cd "$work/mock" && for _ in 1 2 3; do
  rm -rf .assay out
  /usr/bin/time -f "   %e s wall, %M KiB peak" "$assay" run main.assay --model mock:refuse --out out -q
done)
echo "   $(wc -l < "$work/mock/out/results.jsonl") results"

echo "2. $n items against a 50 ms server at concurrency 256 (ideal 5,120/s):"
port=$((20000 + RANDOM % 20000))
./target/release/examples/latency_server "$port" 50 2>/dev/null &
server_pid=$!
sleep 0.5
mkdir -p "$work/http" && product 16 $((n / 160)) 10 > "$work/http/main.assay"
(cd "$work/http" && rm -rf .assay out &&
  start=$(date +%s.%N) &&
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" OPENAI_API_KEY=unused \
    "$assay" run main.assay --model openai:bench --concurrency 256 --no-cache --out out -q &&
  end=$(date +%s.%N) &&
  items=$(wc -l < out/results.jsonl) &&
  awk -v n="$items" -v s="$start" -v e="$end" \
    'BEGIN { r = n / (e - s); printf "   %d requests in %.2f s: %.0f/s, %.0f%% of 5,120/s\n", n, e - s, r, 100 * r / 5120 }')
