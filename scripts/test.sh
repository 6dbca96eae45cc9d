#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and run every test (unit,
# integration, e2e), then the unit tests again under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
export ONEMCP_REQUIRE_KERNEL_FEATURES=1
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 300
BUILD_DIR=build-asan TARGETS=unit_tests scripts/build.sh -DONEMCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -L unit --timeout 300
