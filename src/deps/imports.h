// deps/imports.h — turns the import declarations at the start of run_js code into lookups in the
// run's npm dependency layer, so the code stays a plain script: QuickJS 2021 has no top-level
// await in modules, and a script keeps the value of its last expression. Nothing is resolved
// against any filesystem: a specifier is either one of the layer's modules or an error.
//
//   import _, { chunk as c } from "lodash";  →  const _ = __onemcp_import("lodash").default, {
//   chunk: c } = __onemcp_import("lodash"); import * as m from "pkg";                →  const m =
//   __onemcp_import("pkg"); import "pkg";                            →  __onemcp_import("pkg");
//   import type { T } from "pkg";            →  (nothing: TypeScript types only)
//   import x = require("pkg");               →  const x = require("pkg");
//
// Each rewritten declaration keeps its number of lines, so error line numbers stay the user's.
// Declarations after the first other statement are left alone (the runtime refuses them).
// Thread-safety: pure function.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include "base/result.h"

namespace onemcp::deps {

// `modules`: the specifiers the layer provides ("lodash", "pkg/sub"); Node's built-in modules
// the JS runtime implements are importable too, with or without a layer (is_runtime_builtin).
// An import of anything else ("./x", "/etc/passwd", "os", an undeclared package) is an error
// naming it.
[[nodiscard]] Result<std::string> rewrite_imports(std::string_view code,
                                                  const std::set<std::string>& modules);

// Whether the JS runtime's prelude implements this Node built-in module: "fs" and "fs/promises",
// with or without "node:". (The others are placeholders that only npm packages see.)
bool is_runtime_builtin(std::string_view specifier);

}  // namespace onemcp::deps
