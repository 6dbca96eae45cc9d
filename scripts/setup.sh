#!/usr/bin/env bash
# Installs everything 1mcp needs on a fresh Debian 12 machine: Debian packages, then the pinned
# npm packages of package-lock.json (QuickJS sources from qjsc@0.3.0, esbuild, the MCP SDK used by
# the end-to-end tests). Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost1.81-dev nlohmann-json3-dev libcurl4-openssl-dev libseccomp-dev libcap-dev
  libsodium-dev libidn2-dev libcli11-dev libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpython3.11-dev python3.11 python3-numpy python3-requests nodejs npm iproute2
  python3-pandas python3-matplotlib  # importable in run_py (Debian's data stack)
  python3-pip  # run_py pip dependencies: wheels installed with the runs' own interpreter
  libssl-dev openssl  # the tests' HTTPS fixtures and their throwaway CA
  clang libclang-rt-14-dev  # libFuzzer + ASan/UBSan runtimes for tests/fuzz
  chromium  # the web page's browser tests (tests/e2e/ui.test.mjs, driven by playwright-core)
  dpkg-dev  # dpkg-shlibdeps: the Depends of the Debian package cpack builds (e2e_deb)
  nginx  # e2e_scaleout runs replicas behind it (its own instance; Debian may also start the default site)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere on a developer machine; only require what is absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Pinned by package-lock.json (integrity hashes); no install scripts run.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.1mcp-lock; then
  echo "setup: installing pinned npm packages"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.1mcp-lock
fi
test -f node_modules/qjsc/deps/quickjs_2021_03_27/quickjs.c
test -x node_modules/@esbuild/linux-x64/bin/esbuild
test -f node_modules/typescript/bin/tsc
