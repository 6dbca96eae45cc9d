#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install, build, and run every test (unit,
# integration, e2e), then the unit tests again under ASan+UBSan, then a short fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
export ONEMCP_REQUIRE_KERNEL_FEATURES=1
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 300
BUILD_DIR=build-asan TARGETS=unit_tests scripts/build.sh -DONEMCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -L unit --timeout 300
# Fuzz smoke run: every libFuzzer target (tests/fuzz/) for a few seconds on a copy of its seed
# corpus, two at a time; any crash, sanitizer report, leak or timeout fails the script.
CC=clang CXX=clang++ BUILD_DIR=build-fuzz TARGETS=fuzz scripts/build.sh -DONEMCP_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
fuzz_tmp=$(mktemp -d)
trap 'rm -rf "$fuzz_tmp"' EXIT
fuzz_one() {
  local t=$1 dict=()
  case $t in
    fuzz_url) dict=(-dict=tests/fuzz/url.dict) ;;
    fuzz_utf8_base64 | fuzz_jwt) ;;
    *) dict=(-dict=tests/fuzz/json.dict) ;;
  esac
  mkdir -p "$fuzz_tmp/$t/corpus" "$fuzz_tmp/$t/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$fuzz_tmp/$t/corpus/"
  if ! build-fuzz/tests/fuzz/"$t" "$fuzz_tmp/$t/corpus" "${dict[@]}" -seed=1 -max_total_time=15 \
      -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$fuzz_tmp/$t/artifacts/" \
      >"$fuzz_tmp/$t/log" 2>&1; then
    tail -n 60 "$fuzz_tmp/$t/log"
    for a in "$fuzz_tmp/$t/artifacts"/*; do
      [ -f "$a" ] && { echo "fuzz: $t reproducer $(basename "$a") (base64):"; base64 -w0 "$a"; echo; }
    done
    echo "fuzz: $t FAILED"
    return 1
  fi
  echo "fuzz: $t ok ($(grep -o 'DONE .*' "$fuzz_tmp/$t/log" | head -1))"
}
fuzz_failed=0
fuzz_pair() { fuzz_one "$1" & local a=$!; fuzz_one "$2" & local b=$!; wait $a || fuzz_failed=1; wait $b || fuzz_failed=1; }
fuzz_pair fuzz_url fuzz_utf8_base64
fuzz_pair fuzz_jsonrpc fuzz_frames
fuzz_pair fuzz_config fuzz_broker_frame
fuzz_pair fuzz_upstream fuzz_imports
fuzz_one fuzz_jwt || fuzz_failed=1
[ "$fuzz_failed" -eq 0 ]
