#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the build and the integration
# tests need (scripts/test-deps.sh, quickly skipping what is already there), then runs
# every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

if [ ! -d ../shared/corpus ]; then
  echo "The shared test corpus is expected at ../shared/corpus (beside this checkout)." >&2
  exit 1
fi

# Integration tests open many sockets at once.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doc tests; run them first so the suite's summary comes last.
  cargo test --locked --doc "$@"
  cargo nextest run --locked --no-fail-fast "$@"
else
  cargo test --locked --no-fail-fast "$@"
fi
