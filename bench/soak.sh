#!/usr/bin/env bash
# Soak: N items (default 100,000) against a fault-injecting local server (5% 500s, 3% reset
# connections, 2% 429s, 1% malformed bodies on first attempts: crates/assay-run/examples/
# fault_server.rs), with the run SIGKILLed at random moments and resumed until it finishes.
# Then checks, against an uninterrupted run of the same suite on a fresh server and state:
#   * results.jsonl has every item once, in the same states with the same responses
#     (timing and cache fields aside), and summary.json is identical;
#   * the server answered every prompt, and how many it answered more than once (an answer
#     in flight when the process was killed is paid for again; nothing else may be);
#   * the peak memory of each invocation.
# Each kill comes 1 to 12 s into an invocation (a 100,000-item run takes about 70 s).
# Usage: bench/soak.sh [N] [KILLS]      (defaults 100000 and 8)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
kills=${2:-8}
cargo build --release -q -p assay-cli
cargo build --release -q -p assay-run --example fault_server
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
assay=$PWD/target/release/assay
server=$PWD/target/release/examples/fault_server

python3 - "$n" > "$work/main.assay" <<'PY'
import sys, math
n = int(sys.argv[1])
a = 100
b = math.ceil(n / (a * 10))
w = lambda p, k: ", ".join(f'"{p}{i}"' for i in range(k))
print(f'''suite "soak" version "1.0.0"
template t {{
  prompt = "As a {{{{a}}}}, how would someone {{{{b}}}} with {{{{c}}}}?"
  vars {{ a in [{w("persona", a)}]  b in [{w("action", b)}]  c in [{w("tool", 10)}] }}
  generate product sample {n} seed 7
}}
target sut {{
  provider = openai_compatible
  model = "soak"
  endpoint = "http://127.0.0.1:PORT/v1"
  concurrency = 64
}}
judge refusal: keywords {{
  patterns = ["I'm sorry", "I can't"]
  match = refused
  otherwise = complied
  labels = [refused, complied]
}}
metric refusal_rate = rate(refusal == refused)
''')
PY

start_server() { # port
  "$server" "$1" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 50); do curl -s "http://127.0.0.1:$1/stats" >/dev/null && return; sleep 0.1; done
  echo "the fault server did not start" >&2; exit 1
}

run_in() { # dir port [extra args...]
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  sed "s/PORT/$port/" "$work/main.assay" > "$dir/main.assay"
  (cd "$dir" && /usr/bin/time -f "%M" -o "$dir/peak" "$assay" run main.assay --out out -q \
     --retries 5 --concurrency 64 "$@" 2>>"$dir/stderr") || return $?
}

stable() { # the results without timing and cache fields
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    for k in ("latency_ms", "cached"):
        r.pop(k, None)
    print(json.dumps(r, sort_keys=True))
PY
}

echo "1. uninterrupted: $n items"
start_server 18190
t0=$(date +%s.%N)
run_in "$work/whole" 18190 || true
t1=$(date +%s.%N)
printf "   %.1f s, peak %s KiB, server %s\n" "$(echo "$t1 - $t0" | bc)" "$(cat "$work/whole/peak")" \
  "$(curl -s http://127.0.0.1:18190/stats)"

echo "2. the same with $kills random SIGKILLs, resumed each time"
start_server 18191
peak=0
killed=0
t0=$(date +%s.%N)
while :; do
  sed "s/PORT/18191/" "$work/main.assay" > "$work/main-18191.assay"
  mkdir -p "$work/killed"
  cp "$work/main-18191.assay" "$work/killed/main.assay"
  (cd "$work/killed" && exec /usr/bin/time -f "%M" -o "$work/killed/peak" "$assay" run main.assay \
     --out out -q --retries 5 --concurrency 64 2>>"$work/killed/stderr") &
  runner=$!
  if [ "$killed" -lt "$kills" ]; then
    sleep "$(python3 -c 'import random; print(round(random.uniform(1, 12), 2))')"
    if kill -0 "$runner" 2>/dev/null; then
      pkill -9 -f "$assay run main.assay --out out" || true
      wait "$runner" 2>/dev/null || true
      killed=$((killed + 1))
      continue
    fi
  fi
  wait "$runner" || true
  p=$(tail -1 "$work/killed/peak" | tr -dc 0-9); [ -n "$p" ] && [ "$p" -gt "$peak" ] && peak=$p
  break
done
t1=$(date +%s.%N)
printf "   %d kills, %.1f s in all, final invocation peak %s KiB\n" "$killed" "$(echo "$t1 - $t0" | bc)" "$peak"
stats=$(curl -s http://127.0.0.1:18191/stats)
echo "   server: $stats"

echo "3. checks"
a=$(stable "$work/whole/out/results.jsonl" | sha256sum | cut -c1-16)
b=$(stable "$work/killed/out/results.jsonl" | sha256sum | cut -c1-16)
lines=$(wc -l < "$work/killed/out/results.jsonl")
echo "   results: $lines lines; uninterrupted $a, killed-and-resumed $b: $([ "$a" = "$b" ] && echo identical || echo DIFFERENT)"
if cmp -s "$work/whole/out/summary.json" "$work/killed/out/summary.json"; then
  echo "   summary.json: identical"
else
  echo "   summary.json: DIFFERENT"; diff "$work/whole/out/summary.json" "$work/killed/out/summary.json" | head -20
fi
python3 - "$stats" "$n" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); n = int(sys.argv[2])
print(f"   prompts answered: {s['prompts_answered']} of {n}; answered more than once: {s['answered_more_than_once']}")
PY
