#!/usr/bin/env bash
# Tests of the Vim syntax file. Needs only vim (or $VIM_BIN); skipped, with a message, when
# neither is installed, unless REQUIRE_VIM=1.
#   1. test/highlight.assay: every `// ^ group` assertion holds;
#   2. test/highlight.assay and every specs/*.assay, stdlib/**/*.assay and
#      tests/fixtures/expand/**/*.assay load with no error message, no *Error highlight, every
#      column-0 declaration keyword highlighted as one, and nothing left open at the end
#      (test/check.vim).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

vim_bin="${VIM_BIN:-vim}"
if ! command -v "$vim_bin" >/dev/null; then
  if [ "${REQUIRE_VIM:-0}" = 1 ]; then
    echo "test.sh: $vim_bin not found" >&2
    exit 1
  fi
  echo "vim-syntax: skipped ($vim_bin not found)"
  exit 0
fi

files=(editors/vim/test/highlight.assay)
while IFS= read -r -d '' file; do
  files+=("$file")
done < <(
  cd "$repo" && {
    find specs -maxdepth 1 -type f -name '*.assay' -print0
    find stdlib tests/fixtures/expand -type f -name '*.assay' -print0
  } | sort -z
)

out="$(mktemp "${TMPDIR:-/tmp}/assay-vim.XXXXXX")"
trap 'rm -f "$out"' EXIT

cd "$repo"
status=0
CHECK_OUT="$out" "$vim_bin" -N -u NONE -i NONE -es \
  --cmd 'set runtimepath^=editors/vim' --cmd 'filetype plugin on' --cmd 'syntax on' \
  -S editors/vim/test/check.vim "${files[@]}" </dev/null || status=$?
if [ ! -s "$out" ]; then
  echo "test.sh: vim wrote no results (exit status $status)" >&2
  exit 1
fi
cat "$out"
exit "$status"
