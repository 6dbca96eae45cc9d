#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and serve examples/hello-world on
# http://127.0.0.1:7800/mcp. Extra arguments go to `1mcp serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/1mcp serve --dir examples/hello-world "$@"
