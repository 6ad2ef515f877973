#!/usr/bin/env bash
# The container's entry point (/usr/local/bin/assay-entrypoint in the image).
#
#   assay-entrypoint shard SUITE RUNS N [assay run options...]
#       One pod of an Indexed Job: runs `assay run SUITE --shard K/N --out RUNS/shard-K`,
#       where K = JOB_COMPLETION_INDEX + 1 (Kubernetes numbers the pods 0..N-1, shards are
#       1..N). The state (cache, journal) is ROOT/shard-K, ROOT being ASSAY_STATE_ROOT or
#       RUNS/state, so no two pods share a state lock and a retried pod resumes its shard.
#   assay-entrypoint merge RUNS N OUT [assay merge options...]
#       The merge Job: `assay merge RUNS/shard-1 ... RUNS/shard-N -o OUT`, with its state in
#       ROOT/merge.
#   assay-entrypoint COMMAND...
#       Anything else is `assay COMMAND...` (compile, report, judge, --help, ...).
#
# API keys come from the environment (the Job's envFrom of the assay-api-keys Secret); assay
# reads them at call time and redacts them from everything it writes. ASSAY names the binary
# (default: assay on PATH). The exit status is assay's; 2 for a usage problem, including an
# index that is no shard of 1..N.
set -euo pipefail

assay=${ASSAY:-assay}
die() {
  echo "assay-entrypoint: $*" >&2
  exit 2
}
number() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }

case ${1:-} in
shard)
  [ $# -ge 4 ] || die "usage: shard SUITE RUNS N [assay run options...]"
  suite=$2 runs=$3 count=$4
  shift 4
  number "$count" && [ "$count" -ge 1 ] || die "N must be a number of shards, not '$count'"
  index=${JOB_COMPLETION_INDEX:-}
  [ -n "$index" ] || die "JOB_COMPLETION_INDEX is not set: run shards as an Indexed Job (completionMode: Indexed)"
  number "$index" || die "JOB_COMPLETION_INDEX is not a number: '$index'"
  shard=$((index + 1))
  [ "$shard" -le "$count" ] ||
    die "completion index $index is no shard of 1..$count: the Job's completions must be N ($count)"
  export ASSAY_STATE_DIR="${ASSAY_STATE_ROOT:-$runs/state}/shard-$shard"
  mkdir -p "$ASSAY_STATE_DIR"
  echo "assay shard $shard/$count: completion index $index on ${HOSTNAME:-$(hostname)}," \
    "state $ASSAY_STATE_DIR, out $runs/shard-$shard"
  exec "$assay" run "$suite" --shard "$shard/$count" --out "$runs/shard-$shard" --quiet "$@"
  ;;
merge)
  [ $# -ge 4 ] || die "usage: merge RUNS N OUT [assay merge options...]"
  runs=$2 count=$3 out=$4
  shift 4
  number "$count" && [ "$count" -ge 1 ] || die "N must be a number of shards, not '$count'"
  export ASSAY_STATE_DIR="${ASSAY_STATE_ROOT:-$runs/state}/merge"
  mkdir -p "$ASSAY_STATE_DIR"
  parts=()
  for ((k = 1; k <= count; k++)); do parts+=("$runs/shard-$k"); done
  echo "assay merge of $count shards under $runs into $out"
  exec "$assay" merge "${parts[@]}" -o "$out" "$@"
  ;;
*)
  exec "$assay" "$@"
  ;;
esac
