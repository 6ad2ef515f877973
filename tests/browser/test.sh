#!/usr/bin/env bash
# Browser tests of report.html: Debian's Chromium, headless, driven by playwright-core (pinned
# by package-lock.json; it never downloads a browser of its own). Needs node, npm, and the
# debug `assay` binary (`cargo test` builds it). With no Chromium on the machine the tests
# skip with a loud message; .ci/run installs it first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "browser tests: needs $tool on PATH" >&2; exit 1; }
done
# Installs only when the lock changed since the last install (fast when present).
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s <(sed -n '/"node_modules\/playwright-core"/,/}/p' package-lock.json) <(sed -n '/"node_modules\/playwright-core"/,/}/p' node_modules/.package-lock.json); then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi
export ASSAY="${ASSAY:-${CARGO_TARGET_DIR:-$PWD/../../target}/debug/assay}"
[ -x "$ASSAY" ] || { echo "browser tests: no assay binary at $ASSAY (run cargo build -p assay-cli)" >&2; exit 1; }
node --test --test-concurrency=1 "$@"
