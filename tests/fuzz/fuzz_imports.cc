// fuzz_imports — deps/imports.h and the npm name/range checks on arbitrary bytes.
// rewrite_imports never crashes, keeps the number of lines, and only ever succeeds with code
// whose leading imports all name allowed modules (or the runtime's built-ins, "fs"); an accepted version range never contains a
// character npm would read as a URL, path or alias.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "deps/imports.h"
#include "deps/npm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view code(reinterpret_cast<const char*>(data), size);
  static const std::set<std::string> kModules = {"lodash", "pkg", "pkg/sub", "@s/p"};
  auto r = onemcp::deps::rewrite_imports(code, kModules);
  if (r.ok()) {
    if (std::count(r->begin(), r->end(), '\n') != std::count(code.begin(), code.end(), '\n'))
      std::abort();
    // Every generated lookup names an allowed module.
    for (size_t p = r->find("__onemcp_import(\""); p != std::string::npos;
         p = r->find("__onemcp_import(\"", p + 1)) {
      size_t b = p + 17, e = r->find('"', b);
      std::string spec = r->substr(b, e == std::string::npos ? std::string::npos : e - b);
      // The call may come from the input itself (after the declarations): only check ours.
      if (code.find("__onemcp_import") == std::string_view::npos && !kModules.count(spec) &&
          !onemcp::deps::is_runtime_builtin(spec))
        std::abort();
    }
  }
  if (onemcp::deps::valid_version_range(code) &&
      code.find_first_of(":/\\@\n") != std::string_view::npos) {
    std::abort();
  }
  if (onemcp::deps::valid_package_name(code) &&
      (code.find("..") == 0 || code.find('\0') != std::string_view::npos)) {
    std::abort();
  }
  return 0;
}
