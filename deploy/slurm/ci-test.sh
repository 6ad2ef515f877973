#!/usr/bin/env bash
# A real Slurm cluster of one machine runs deploy/slurm/ as the README says, and the merged
# run must equal an unsharded run of the same suite.
#
# Installs Debian's slurm-wlm and munge when missing (needs root and apt-get), writes a
# single-node slurm.conf in a temp folder (controller and node on this machine, on loopback,
# linuxproc process tracking, no cgroups, state, spool and logs in the temp folder), starts
# munged, slurmctld and slurmd in the foreground in the background and records their PIDs,
# compiles deploy/test/suite.assay (48 items), starts a deterministic OpenAI-compatible model
# server on loopback (deploy/test/model_server.py, which wants an API key), submits the shard
# array with 4 tasks against it (`--model openai:gpt-4o-mini`, the key and OPENAI_BASE_URL
# passed on by sbatch) and the merge job after it, waits for the merge job, and compares:
# results.jsonl (without latency_ms and cached), judgements.jsonl and summary.json byte for
# byte, and that the key is written nowhere. The daemons and the server it started are stopped
# by PID on every exit. Before Slurm, it checks the array-id-to-shard mapping of the shard
# script.
#
# Uses ASSAY, or the debug binary of the CI build (${CARGO_TARGET_DIR:-target}/debug/assay).
# Prints `N passed, N failed` at the end; exits 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
started=$SECONDS

assay=${ASSAY:-${CARGO_TARGET_DIR:-$repo/target}/debug/assay}
case $assay in /*) ;; *) assay=$repo/$assay ;; esac
if [ ! -x "$assay" ]; then
  echo "slurm test: $assay is missing; building it" >&2
  cargo build -q -p assay-cli
fi

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# ---- Packages ------------------------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm test: needs root (to install packages and run slurmd as SlurmUser=root)" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
  ! command -v sbatch >/dev/null || ! command -v munged >/dev/null || ! command -v jq >/dev/null; then
  echo "slurm test: installing slurm-wlm, munge and jq"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge jq >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge jq >/dev/null; }
fi

tmp=$(mktemp -d /tmp/assay-slurm.XXXXXX)
chmod 700 "$tmp"
pids=()
cleanup() {
  local status=$?
  if [ -n "${SLURM_CONF:-}" ] && [ ${#pids[@]} -gt 0 ]; then
    # Jobs still queued or running (a failure) are cancelled before their daemons go.
    scancel --quiet "${array_job:-}" "${merge_job:-}" 2>/dev/null || true
    sleep 1
  fi
  # Stopped in the reverse order of their start, each by the PID it was given.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ -d "$tmp/log" ]; then
    for f in "$tmp"/log/* "$tmp"/runs/logs/*; do
      [ -f "$f" ] || continue
      echo "---- $f (last lines)"
      tail -n 30 "$f"
    done
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

suite=$tmp/suite
runs=$tmp/runs
model=openai:gpt-4o-mini
"$assay" compile deploy/test/suite.assay --locked -o "$suite" 2>/dev/null

# ---- The shard script's task ids, without Slurm --------------------------------------------
shard_of_task() { # ID BASE: the shard the script announces, or its refusal
  SLURM_ARRAY_TASK_ID=$1 ASSAY_ARRAY_BASE=$2 ASSAY=/bin/true \
    deploy/slurm/assay-shard.sbatch "$suite" "$tmp/ids" 4 2>&1 | head -n 1 || true
}
check_shard() { # ID BASE EXPECTED
  local got
  got=$(shard_of_task "$1" "$2")
  case $got in *"$3"*) ok "array task $1 with base $2: $3" ;; *) fail "array task $1 with base $2: expected '$3', got '$got'" ;; esac
}
check_shard 1 1 "assay shard 1/4"
check_shard 4 1 "assay shard 4/4"
check_shard 0 0 "assay shard 1/4"
check_shard 3 0 "assay shard 4/4"
check_shard 0 1 "is no shard of 1..4"
check_shard 4 0 "is no shard of 1..4"
rm -rf "$tmp/ids"

# ---- The model server, on loopback ----------------------------------------------------------
export OPENAI_API_KEY=sk-assay-slurm-test-0123456789
python3 deploy/test/model_server.py "$tmp/model.port" --key "$OPENAI_API_KEY" --lifetime 300 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/model.port" ] && break; sleep 0.1; done
port=$(cat "$tmp/model.port")
export OPENAI_BASE_URL=http://127.0.0.1:$port/v1

# ---- A cluster of one machine ----------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
memory=$(($(free -m | awk '/^Mem:/ {print $2}') - 1024))
mkdir -p "$tmp/log" "$tmp/state" "$tmp/spool" "$tmp/munge"

# munge: its own key, socket, pid and seed files here, so nothing of the machine's is used.
mungekey --create --keyfile="$tmp/munge/munge.key" 2>/dev/null ||
  { dd if=/dev/urandom of="$tmp/munge/munge.key" bs=1024 count=1 status=none; }
chmod 400 "$tmp/munge/munge.key"
socket=$tmp/munge/munge.socket
munged --foreground --force --socket="$socket" --key-file="$tmp/munge/munge.key" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/log/munged.log" >>"$tmp/log/munged.out" 2>&1 &
pids+=($!)

# Ports away from a real cluster's 6817/6818.
ctld_port=${ASSAY_SLURM_PORT:-16817}
cat >"$tmp/slurm.conf" <<EOF
ClusterName=assayci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$((ctld_port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf

for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
slurmctld -D -c -i -f "$SLURM_CONF" >>"$tmp/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >>"$tmp/log/slurmd.out" 2>&1 &
pids+=($!)

state=
for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
if [ "$state" != idle ]; then
  echo "slurm test: node $host is '${state:-unreachable}', not idle, after 30 s" >&2
  exit 1
fi
ok "slurmctld and slurmd up, node $host idle with $cpus CPUs ($((SECONDS - started)) s)"

# ---- The operator's commands (deploy/slurm/README.md) --------------------------------------
submitted=$SECONDS
mkdir -p "$runs/logs"
export ASSAY=$assay
array_job=$(sbatch --parsable --array=1-4 --output="$runs/logs/shard-%a.out" \
  deploy/slurm/assay-shard.sbatch "$suite" "$runs" 4 --model "$model")
array_job=${array_job%%;*}
merge_job=$(sbatch --parsable --dependency=afterok:"$array_job" --kill-on-invalid-dep=yes \
  --output="$runs/logs/merge.out" deploy/slurm/assay-merge.sbatch "$runs" 4 "$runs/merged")
merge_job=${merge_job%%;*}

job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
merge_state=
for _ in $(seq 240); do
  merge_state=$(job_state "$merge_job")
  case $merge_state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;; esac
  sleep 0.5
done
if [ "$merge_state" = COMPLETED ]; then
  ok "array job $array_job (4 tasks) and merge job $merge_job completed in $((SECONDS - submitted)) s"
else
  fail "merge job $merge_job is ${merge_state:-unknown}, not COMPLETED"
  scontrol show job "$array_job" | grep -E 'JobId|JobState|ExitCode' >&2 || true
  exit 1
fi

# Four tasks, each its own shard, state and run folder.
items=0
for k in 1 2 3 4; do
  part=$runs/shard-$k
  if jq -e --argjson k "$k" '.shard == $k and .of == 4' "$part/shard.json" >/dev/null 2>&1 &&
    [ -f "$runs/state/shard-$k/state.db" ] && grep -q "job ${array_job}_$k on" "$runs/logs/shard-$k.out"; then
    ok "task $k ran shard $k/4 with its own state"
  else
    fail "task $k: no shard $k/4 run folder, state or log"
  fi
  items=$((items + $(wc -l <"$part/results.jsonl")))
done
[ "$items" -eq 48 ] && ok "the 4 shards hold the 48 items once" || fail "the shards hold $items results, not 48"
answered=$(jq -r 'select(.state == "ok") | .item_id' "$runs/merged/results.jsonl" | sort -u | wc -l)
[ "$answered" -eq 48 ] && ok "the model server answered the 48 items" || fail "$answered of 48 items answered"

# ---- The same suite unsharded ----------------------------------------------------------------
ASSAY_STATE_DIR=$tmp/whole-state "$assay" run "$suite" --model "$model" --out "$tmp/whole" --quiet 2>/dev/null
strip() { jq -c 'del(.latency_ms, .cached)' "$1"; }
if cmp -s <(strip "$runs/merged/results.jsonl") <(strip "$tmp/whole/results.jsonl"); then
  ok "results.jsonl of the merge equals the unsharded run's (latency_ms and cached aside)"
else
  fail "results.jsonl differs:"
  diff <(strip "$runs/merged/results.jsonl") <(strip "$tmp/whole/results.jsonl") | head -n 20
fi
for file in judgements.jsonl summary.json; do
  if cmp -s "$runs/merged/$file" "$tmp/whole/$file"; then
    ok "$file of the merge equals the unsharded run's byte for byte"
  else
    fail "$file differs from the unsharded run's"
  fi
done
if grep -rq "$OPENAI_API_KEY" "$runs" "$tmp/whole"; then
  fail "the API key is written in a run folder, state or log"
else
  ok "the API key is written nowhere"
fi
grep -q "unsafe_rate" "$runs/logs/merge.out" && ok "the merge job printed the report" ||
  fail "the merge job's output has no report"

echo "slurm test: $((SECONDS - started)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
