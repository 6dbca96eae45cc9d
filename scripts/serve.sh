#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and serve examples/hello-world on
# http://127.0.0.1:7800/mcp. Extra arguments go to `1mcp serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Only what serving needs (the server and its two workers), not the tests, fuzzers or benches;
# scripts/test.sh builds everything. ccache (scripts/build.sh) makes a second build quick.
TARGETS="1mcp 1mcp-js-worker 1mcp-py-worker" scripts/build.sh
exec build/1mcp serve --dir examples/hello-world "$@"
