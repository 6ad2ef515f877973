#!/usr/bin/env bash
# Fuzzing on a stable toolchain: runs Assay's property tests (the parser and formatter, the
# checker on mutated specs, dataset importers on arbitrary bytes, templates over arbitrary
# values) with many cases, in release mode, for a bounded time, and prints what ran.
#
#   bench/fuzz.sh [SECONDS_PER_TARGET] [CASES_PER_ROUND]
#
# Each target runs in rounds of CASES_PER_ROUND cases per property (proptest draws a fresh
# seed every round) until SECONDS_PER_TARGET have passed. A failure stops the script: proptest
# prints the shrunk input and records its seed in the test's `.proptest-regressions` file, so
# that `cargo test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:-120}
chunk=${2:-2000}

# target (cargo arguments) | test-name filters
targets=(
  "-p assay-syntax --test fuzz_parse|"
  "-p assay-check --test robustness|mutated_specs_never_panic random_text_never_panics"
  "-p assay-expand --test fuzz|"
)

echo "building (release)..."
for t in "${targets[@]}"; do
  # shellcheck disable=SC2086
  cargo test --release --no-run -q ${t%%|*}
done

printf '\n%-38s %-40s %7s %10s %8s\n' target property rounds cases seconds
total_cases=0
total_start=$SECONDS
for t in "${targets[@]}"; do
  args=${t%%|*}
  filters=${t#*|}
  start=$SECONDS
  rounds=0
  declare -A passed=()
  while (( SECONDS - start < budget )); do
    # shellcheck disable=SC2086
    if ! out=$(PROPTEST_CASES=$chunk cargo test --release $args -- $filters 2>&1); then
      echo "$out" | tail -40
      echo "FAILED: cargo test --release $args (round $((rounds + 1)), $chunk cases per property)"
      exit 1
    fi
    rounds=$((rounds + 1))
    while read -r name; do
      passed[$name]=$(( ${passed[$name]:-0} + chunk ))
    done < <(echo "$out" | sed -n 's/^test \(.*\) \.\.\. ok$/\1/p')
  done
  elapsed=$((SECONDS - start))
  for name in $(printf '%s\n' "${!passed[@]}" | sort); do
    printf '%-38s %-40s %7d %10d %8d\n' "$args" "$name" "$rounds" "${passed[$name]}" "$elapsed"
    total_cases=$((total_cases + passed[$name]))
  done
  unset passed
done
echo
echo "$total_cases cases in $((SECONDS - total_start)) s, no failure"
