#!/usr/bin/env bash
# The Kubernetes deployment, tested without a cluster.
#
# 1. The manifests validate against the Kubernetes API schema, offline, with the PyPI package
#    kubernetes-validate (its schemas ship in the package), pinned with its dependencies by
#    hash in test/requirements.txt and installed in a cached virtualenv; strict (an unknown
#    field fails), for the oldest and newest Kubernetes they are meant for. A manifest with a
#    misspelt field must fail, so the validator is known to look.
# 2. test/manifests.py checks what the schema cannot: N agrees between the Jobs, the pods use
#    the image's entry point, user, claim and Secret as the Dockerfile and the other manifests
#    name them.
# 3. The entry point runs as the Indexed Job would run it: for each completion index
#    0..N-1, entrypoint.sh with the shard Job's own args (the volume's mount path mapped to a
#    temp folder), JOB_COMPLETION_INDEX, and the Secret's keys as environment variables, all
#    N at once, against a deterministic OpenAI-compatible server on loopback that refuses
#    requests without the key (deploy/test/model_server.py). Then the merge Job's args. Each
#    pod must run shard index+1 with its own state; the merged run must equal an unsharded run
#    (results.jsonl without latency_ms and cached, judgements.jsonl, summary.json); the key
#    must be written nowhere; an index outside 0..N-1 or none must fail with exit 2.
#
# Uses ASSAY, or the debug binary of the CI build (${CARGO_TARGET_DIR:-target}/debug/assay).
# Prints `N passed, N failed` at the end; exits 1 when a check fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
here=deploy/kubernetes
started=$SECONDS

assay=${ASSAY:-${CARGO_TARGET_DIR:-$repo/target}/debug/assay}
case $assay in /*) ;; *) assay=$repo/$assay ;; esac
if [ ! -x "$assay" ]; then
  echo "kubernetes test: $assay is missing; building it" >&2
  cargo build -q -p assay-cli
fi

if ! command -v jq >/dev/null && command -v apt-get >/dev/null; then
  apt-get install -y -q jq >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q jq >/dev/null; }
fi

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
tally() { # the ok/FAIL lines of a check program, counted
  local line
  while IFS= read -r line; do
    case $line in "ok   "*) ok "${line#ok   }" ;; "FAIL "*) fail "${line#FAIL }" ;; *) echo "$line" ;; esac
  done
}

tmp=$(mktemp -d /tmp/assay-k8s.XXXXXX)
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. The API schema ---------------------------------------------------------------------
requirements=$here/test/requirements.txt
cache=${ASSAY_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/assay-ci}
venv=$cache/kubernetes-validate-$(sha256sum "$requirements" | cut -c1-16)
if [ ! -f "$venv/installed" ]; then
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r "$requirements"
  touch "$venv/installed"
fi
validate() { "$venv/bin/kubernetes-validate" --strict --quiet "$@"; }

manifests=("$here"/*.yaml)
for version in 1.31.0 1.37.0; do
  if out=$(validate -k "$version" "${manifests[@]}" 2>&1); then
    ok "${#manifests[@]} manifests validate against Kubernetes $version (strict)"
  else
    fail "the manifests do not validate against Kubernetes $version:"
    echo "$out"
  fi
done
sed 's/completionMode: Indexed/completionMod: Indexed/' "$here/shard-job.yaml" >"$tmp/misspelt.yaml"
if out=$(validate "$tmp/misspelt.yaml" 2>&1); then
  fail "a misspelt field validates"
else
  case $out in *completionMod*) ok "a misspelt field is refused: ${out##*: }" ;; *) fail "unexpected: $out" ;; esac
fi

# ---- 2. The manifests together ---------------------------------------------------------------
status=0
"$venv/bin/python" "$here/test/manifests.py" "$here" "$tmp/job.json" >"$tmp/manifests.out" 2>&1 || status=$?
tally <"$tmp/manifests.out"
[ "$status" -eq 0 ] || { fail "test/manifests.py stopped with exit $status"; exit 1; }
job() { jq -r "$1" "$tmp/job.json"; }
count=$(job .count)
mount=$(job .mount)
data=$tmp/data
mapfile -t shard_args < <(job '.shard_args[]' | sed "s|^$mount/|$data/|")
mapfile -t merge_args < <(job '.merge_args[]' | sed "s|^$mount/|$data/|")
mapfile -t secret_keys < <(job '.secret_keys[]')
mapfile -t shard_env < <(job '.shard_env | to_entries[] | "\(.key)=\(.value)"')
mapfile -t merge_env < <(job '.merge_env | to_entries[] | "\(.key)=\(.value)"')
suite=${shard_args[1]}
runs=${shard_args[2]}

# ---- 3. The entry point, as the Indexed Job runs it ------------------------------------------
key=sk-assay-k8s-test-0123456789
python3 deploy/test/model_server.py "$tmp/model.port" --key "$key" --lifetime 300 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/model.port" ] && break; sleep 0.1; done
base_url=http://127.0.0.1:$(cat "$tmp/model.port")/v1

mkdir -p "$tmp/home"
"$assay" compile deploy/test/suite.assay --locked -o "$suite" 2>/dev/null

# The environment of a pod: the Secret's keys (envFrom; the server's key for OpenAI's, a
# stand-in for any other), the container's env, what Kubernetes adds, and the image's PATH.
secrets=()
for name in "${secret_keys[@]}"; do
  if [ "$name" = OPENAI_API_KEY ]; then secrets+=("$name=$key"); else secrets+=("$name=stand-in-$name"); fi
done
pod() { # INDEX|- ENV... -- ARGS...: entrypoint.sh in a pod's environment
  local index=$1
  shift
  local env=(PATH=/usr/local/bin:/usr/bin:/bin HOME="$tmp/home" ASSAY="$assay"
    OPENAI_BASE_URL="$base_url" "${secrets[@]}")
  [ "$index" = - ] || env+=(JOB_COMPLETION_INDEX="$index" HOSTNAME="assay-shards-$index-x7k2q")
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  env -i "${env[@]}" "$repo/$here/entrypoint.sh" "$@"
}

# All N pods at once, as parallelism N runs them.
jobs_started=$SECONDS
pod_pids=()
for ((i = 0; i < count; i++)); do
  pod "$i" "${shard_env[@]}" -- "${shard_args[@]}" >"$tmp/pod-$i.log" 2>&1 &
  pod_pids+=($!)
done
for ((i = 0; i < count; i++)); do
  k=$((i + 1))
  if wait "${pod_pids[i]}"; then
    if jq -e --argjson k "$k" --argjson n "$count" '.shard == $k and .of == $n' "$runs/shard-$k/shard.json" >/dev/null &&
      [ -f "$runs/state/shard-$k/state.db" ] &&
      grep -q "^assay shard $k/$count: completion index $i on assay-shards-$i" "$tmp/pod-$i.log"; then
      ok "completion index $i ran shard $k/$count with its own state"
    else
      fail "completion index $i: no shard $k/$count run folder, state or log line"
      cat "$tmp/pod-$i.log"
    fi
  else
    fail "completion index $i exited non-zero:"
    cat "$tmp/pod-$i.log"
  fi
done
if pod - "${merge_env[@]}" -- "${merge_args[@]}" >"$tmp/merge.log" 2>&1; then
  ok "$count pods and the merge ran in $((SECONDS - jobs_started)) s"
else
  fail "the merge exited non-zero:"
  cat "$tmp/merge.log"
  exit 1
fi
merged=${merge_args[3]}

answered=$(jq -r 'select(.state == "ok") | .item_id' "$merged/results.jsonl" | sort -u | wc -l)
[ "$answered" -eq 48 ] && ok "the model server answered the 48 items with the Secret's key" ||
  fail "$answered of 48 items answered"
ASSAY_STATE_DIR=$tmp/whole-state OPENAI_API_KEY=$key OPENAI_BASE_URL=$base_url \
  "$assay" run "$suite" "${shard_args[@]:4}" --out "$tmp/whole" --quiet 2>/dev/null
strip() { jq -c 'del(.latency_ms, .cached)' "$1"; }
if cmp -s <(strip "$merged/results.jsonl") <(strip "$tmp/whole/results.jsonl"); then
  ok "results.jsonl of the merge equals the unsharded run's (latency_ms and cached aside)"
else
  fail "results.jsonl differs:"
  diff <(strip "$merged/results.jsonl") <(strip "$tmp/whole/results.jsonl") | head -n 20
fi
for file in judgements.jsonl summary.json; do
  cmp -s "$merged/$file" "$tmp/whole/$file" && ok "$file of the merge equals the unsharded run's byte for byte" ||
    fail "$file differs from the unsharded run's"
done
if grep -rq "$key" "$data" "$tmp"/*.log; then
  fail "the API key is written in a run folder, state or log"
else
  ok "the API key is written nowhere"
fi

# Indexes that are no shard, and none at all, run nothing.
for index in "$count" -; do
  status=0
  out=$(pod "$index" "${shard_env[@]}" -- "${shard_args[@]}" 2>&1) || status=$?
  if [ "$status" -eq 2 ] && [ ! -e "$runs/shard-$((count + 1))" ]; then
    ok "index ${index/-/unset}: exit 2, ${out#assay-entrypoint: }"
  else
    fail "index ${index/-/unset}: exit $status: $out"
  fi
done
# Anything else is an assay command.
if out=$(pod - -- check deploy/test/suite.assay 2>&1) && [[ $out == *"ok, 10 definitions"* ]]; then
  ok "entrypoint.sh check ... is assay check ..."
else
  fail "entrypoint.sh check: $out"
fi

echo "kubernetes test: $((SECONDS - started)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
