#!/usr/bin/env bash
# Past one process: `assay merge` of a 43,090-item run in 4 shards, and `assay plan` of the
# shipped MLCommons v0.5 suite. Prints wall time and peak memory of each (GNU time).
#
#   bench/scale.sh            # release build; N=43090 items, K=4 shards
#   N=10000 K=8 bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-43090}
K=${K:-4}
cargo build --release -q -p assay-cli
ASSAY="${CARGO_TARGET_DIR:-$PWD/target}/release/assay"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "bench/scale.sh needs GNU time (apt-get install time)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ASSAY_STATE_DIR="$work/state"

# A suite of N items: one template over two lists whose product is at least N, then --limit.
python3 - "$work" "$N" <<'PY'
import math, sys
work, n = sys.argv[1], int(sys.argv[2])
side = math.isqrt(n) + 1
a = ", ".join(f'"a{i}"' for i in range(side))
b = ", ".join(f'"b{i}"' for i in range(side))
open(f"{work}/s.assay", "w").write(f'''suite "scale" version "1.0.0"
template t {{
  prompt = "Tell me about {{{{x}}}} and {{{{y}}}}."
  vars {{ x in [{a}]  y in [{b}] }}
}}
judge refusal: keywords {{ patterns = ["sorry"]  labels = [refused, complied]  match = refused  otherwise = complied }}
metric refusal_rate = rate(refusal == refused)
''')
PY
cd "$work"
"$ASSAY" compile s.assay --out suite >/dev/null
echo "== $K shards of $N items (mock:refuse)"
for k in $(seq 1 "$K"); do
  "$ASSAY" run suite --model mock:refuse --limit "$N" --shard "$k/$K" --quiet --out "shard-$k" >/dev/null 2>&1 || true
done
wc -l shard-*/results.jsonl | tail -1
echo "== assay merge"
"$TIME" -f "merge: %e s wall, %M KiB peak" "$ASSAY" merge shard-* -o merged --quiet 2>&1 | grep -E "merge:|error" || true
wc -l < merged/results.jsonl
echo "== assay plan of specs/mlcommons-v0.5.assay (4,200 items)"
cd - >/dev/null
"$TIME" -f "plan: %e s wall, %M KiB peak" "$ASSAY" plan specs/mlcommons-v0.5.assay --model openai:gpt-4o-mini --price 0.15/0.6 2>&1 | grep -E "^total|plan:|gpt-4o-mini"
