// transpile/esbuild.h — TypeScript / modern JavaScript to QuickJS-2021-compatible JavaScript by
// running the esbuild binary (no shell, minimal environment, bounded time and output).
// The supervisor calls it only when the JS worker asked (needs_transpile), so plain JS never pays.
// Thread-safety: esbuild_transform may be called from many threads at once.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace onemcp::transpile {

// Name esbuild uses for the code in its diagnostics ("run_js.ts:1:6: ERROR: ...").
inline constexpr char kSourceFile[] = "run_js.ts";

// Transforms `code` (TypeScript loader, target es2020, top-level await kept). On failure the
// error message is esbuild's diagnostics, one line per error, without colors, e.g.
//   run_js.ts:1:6: ERROR: Expected ";" but found "x"
[[nodiscard]] Result<std::string> esbuild_transform(const std::string& esbuild_exe, std::string_view code,
                                                    int timeout_ms);

// Turns esbuild's human-readable stderr into compact "file:line:col: ERROR: message" lines.
// Exposed for tests.
std::string clean_diagnostics(std::string_view esbuild_stderr);

}  // namespace onemcp::transpile
