# QuickJS 2021-03-27 as a static library, built from the sources scripts/setup.sh fetched from npm
# (qjsc@0.3.0, pinned by package-lock.json). Third-party code: its own relaxed warnings, never
# -Werror. quickjs-libc.c is deliberately left out: no std/os modules, no host filesystem.
include_guard(GLOBAL)

set(ONEMCP_QUICKJS_DIR "${PROJECT_SOURCE_DIR}/node_modules/qjsc/deps/quickjs_2021_03_27"
    CACHE PATH "QuickJS 2021-03-27 C sources (fetched by scripts/setup.sh)")

if(NOT EXISTS "${ONEMCP_QUICKJS_DIR}/quickjs.c")
  message(FATAL_ERROR
    "QuickJS sources not found in ONEMCP_QUICKJS_DIR=${ONEMCP_QUICKJS_DIR}.\n"
    "Run scripts/setup.sh first (it installs the pinned npm packages, including qjsc@0.3.0).")
endif()

add_library(quickjs STATIC
  ${ONEMCP_QUICKJS_DIR}/quickjs.c
  ${ONEMCP_QUICKJS_DIR}/libregexp.c
  ${ONEMCP_QUICKJS_DIR}/libunicode.c
  ${ONEMCP_QUICKJS_DIR}/cutils.c
  ${ONEMCP_QUICKJS_DIR}/libbf.c)
# CONFIG_BIGNUM: BigInt (needs libbf.c); quickjs.h itself does not depend on it.
target_compile_definitions(quickjs PRIVATE _GNU_SOURCE CONFIG_VERSION="2021-03-27" CONFIG_BIGNUM)
# Upstream builds with -funsigned-char; -w because upstream warnings are not ours to fix.
target_compile_options(quickjs PRIVATE -w -funsigned-char)
# The sanitizer build checks our code: upstream passes null with a zero length to memcpy (UBSan
# reports it), which is not ours to fix either.
if(ONEMCP_SANITIZE)
  target_compile_options(quickjs PRIVATE -fno-sanitize=undefined)
endif()
set_target_properties(quickjs PROPERTIES POSITION_INDEPENDENT_CODE ON)
# SYSTEM: our -Werror code must not trip over warnings in quickjs.h.
target_include_directories(quickjs SYSTEM PUBLIC ${ONEMCP_QUICKJS_DIR})
target_link_libraries(quickjs PUBLIC m Threads::Threads)
