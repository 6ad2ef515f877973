#!/usr/bin/env bash
# Tests of the tree-sitter grammar. Needs a C compiler and the tree-sitter CLI (0.25 or later);
# node is used for `generate` when present, else the CLI's built-in QuickJS runtime.
#   1. src/ is generated from grammar.js (it is not committed);
#   2. the corpus (test/corpus/*.txt) and the highlight assertions (test/highlight/*.assay)
#      pass, and every query in queries/ compiles (`tree-sitter test` checks all three);
#   3. every specs/*.assay, stdlib/**/*.assay and tests/fixtures/expand/**/*.assay (all valid
#      Assay) parses with no ERROR and no MISSING node;
#   4. only when $ASSAY names an `assay` binary: the pest grammar agrees with the corpus
#      (test/pest-agreement.js).
#
# The CLI is $TREE_SITTER if set, else `tree-sitter` on PATH if it is 0.25 or later, else
# $TS_ROOT/bin/tree-sitter, installed there with cargo when missing
# (TS_ROOT defaults to ~/.cache/assay-ts, TS_VERSION to the version the corpus was written with).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

TS_VERSION="${TS_VERSION:-0.27.1}"
TS_ROOT="${TS_ROOT:-$HOME/.cache/assay-ts}"

die() { echo "test.sh: $*" >&2; exit 1; }

# Succeeds when the CLI given is 0.25 or later (tree-sitter.json and ABI 15).
recent_enough() {
  local version major minor
  version="$("$1" --version 2>/dev/null | awk '{ print $2 }')" || return 1
  major="${version%%.*}"
  minor="${version#*.}"
  minor="${minor%%.*}"
  [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || return 1
  (( major > 0 || minor >= 25 ))
}

if [ -n "${TREE_SITTER:-}" ]; then
  [ -x "$TREE_SITTER" ] || die "TREE_SITTER=$TREE_SITTER is not an executable"
  ts="$TREE_SITTER"
elif command -v tree-sitter >/dev/null && recent_enough "$(command -v tree-sitter)"; then
  ts="$(command -v tree-sitter)"
else
  ts="$TS_ROOT/bin/tree-sitter"
  if ! [ -x "$ts" ] || ! recent_enough "$ts"; then
    command -v cargo >/dev/null || die "no tree-sitter CLI found and no cargo to install one"
    echo "test.sh: installing tree-sitter-cli $TS_VERSION into $TS_ROOT (takes a few minutes)"
    cargo install --locked tree-sitter-cli --version "$TS_VERSION" --root "$TS_ROOT"
  fi
fi
recent_enough "$ts" || die "$ts is older than 0.25; set TREE_SITTER to a newer CLI"

cc="${CC:-}"
if [ -z "$cc" ]; then
  for candidate in cc gcc clang; do
    if command -v "$candidate" >/dev/null; then cc="$candidate"; break; fi
  done
fi
[ -n "$cc" ] || die "needs a C compiler (cc, gcc or clang) to build the parser"

if command -v node >/dev/null; then
  js_runtime=node
else
  js_runtime=native
fi

# Keep the compiled parser and the CLI's configuration out of the user's cache and config.
work="$(mktemp -d "${TMPDIR:-/tmp}/assay-ts.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TREE_SITTER_DIR="$work/config"
export TREE_SITTER_LIBDIR="$work/lib"
export NO_COLOR=1
mkdir -p "$TREE_SITTER_DIR" "$TREE_SITTER_LIBDIR"

echo "test.sh: $("$ts" --version) ($ts), generate with $js_runtime, cc $cc"

# 1. Generate.
"$ts" generate --js-runtime "$js_runtime"

# 2. Corpus, query and highlight tests.
"$ts" test --overview-only

# 3. Every valid Assay file in the repository parses cleanly.
"$ts" build --output "$work/assay.so" . >/dev/null
files=()
while IFS= read -r -d '' file; do
  files+=("$file")
done < <(
  cd "$repo" && {
    find specs -maxdepth 1 -type f -name '*.assay' -print0
    find stdlib tests/fixtures/expand -type f -name '*.assay' -print0
  } | sort -z
)
[ "${#files[@]}" -gt 0 ] || die "no .assay files found under $repo"
highlight_files=(test/highlight/*.assay)

status=0
report="$(
  cd "$repo" &&
    "$ts" parse --quiet --lib-path "$work/assay.so" --lang-name assay "${files[@]}" \
      "${highlight_files[@]/#/editors/tree-sitter-assay/}" 2>&1
)" || status=$?
# `--quiet` prints a line only for a file with an ERROR or MISSING node.
bad="$(grep -cE 'ERROR|MISSING' <<<"$report" || true)"
if [ "$status" -ne 0 ] || [ "$bad" -ne 0 ]; then
  echo "$report" >&2
  die "parse: $bad file(s) with ERROR or MISSING nodes (exit status $status)"
fi
corpus_cases="$(cat test/corpus/*.txt | grep -cE '^={3,}$' | awk '{ print $1 / 2 }')"
assertions="$(grep -hcE '^//[[:space:]]*(\^|<-)' "${highlight_files[@]}" | awk '{ n += $1 } END { print n }')"
echo "corpus: ${corpus_cases} cases passed"
echo "highlight: ${#highlight_files[@]} files, ${assertions} assertions passed"
echo "parse: ${#files[@]} spec, stdlib and fixture files and ${#highlight_files[@]} highlight files, 0 with ERROR or MISSING nodes"

# 4. Optional: the authoritative pest grammar agrees with the corpus.
if [ -n "${ASSAY:-}" ]; then
  command -v node >/dev/null || die "ASSAY is set, but the pest agreement check needs node"
  node test/pest-agreement.js "$ASSAY"
else
  echo "pest-agreement: skipped (set ASSAY to an assay binary to compare the corpus with pest)"
fi
