#!/usr/bin/env bash
# Tests of the VS Code extension's TextMate grammar. Needs only node and npm.
#   1. syntaxes/assay.tmLanguage.json is what scripts/build-grammar.js generates;
#   2. the scope assertions in test/*.test.assay hold (vscode-tmgrammar-test);
#   3. every specs/*.assay and stdlib/**/*.assay tokenizes with no invalid.* scope and with
#      each column-0 declaration keyword scoped as a keyword (test/no-invalid.js).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "test.sh: needs $tool on PATH" >&2; exit 1; }
done

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi

npm run --silent test:grammar
fixtures=(test/*.test.assay)
assertions=$(grep -cE '^//[[:space:]]*(\^|<)' "${fixtures[@]}" | awk -F: '{ n += $2 } END { print n }')
echo "grammar-tests: ${#fixtures[@]} passed, 0 failed (${assertions} assertion lines)"

npm run --silent test:specs
