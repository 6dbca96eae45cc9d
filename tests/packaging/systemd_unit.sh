#!/usr/bin/env bash
# packaging/1mcp.service passes `systemd-analyze verify` without a warning. The unit names the
# installed /usr/bin/1mcp, which verify requires to exist: the copy checked here names the
# binary just built instead. Skipped (exit 77) where systemd-analyze is not installed (Debian:
# the `systemd` package).
set -euo pipefail
unit="$1"
bin="$2"
if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not found (Debian: apt-get install systemd); $unit not verified"
  exit 77
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/1mcp|$bin|g" "$unit" > "$tmp/1mcp.service"
grep -q "^ExecStart=$bin serve --dir /var/lib/1mcp" "$tmp/1mcp.service"
grep -q '^Delegate=' "$tmp/1mcp.service"
if ! systemd-analyze verify "$tmp/1mcp.service" > "$tmp/out" 2>&1; then
  cat "$tmp/out"
  echo "FAIL: systemd-analyze verify rejected $unit"
  exit 1
fi
# verify exits 0 on unknown keys and bad values, with a warning: any line is a failure.
if [ -s "$tmp/out" ]; then
  cat "$tmp/out"
  echo "FAIL: systemd-analyze verify warned about $unit"
  exit 1
fi
echo "ok: $unit verified"
