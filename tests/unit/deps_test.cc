#include <gtest/gtest.h>

#include "deps/imports.h"
#include "deps/npm.h"
#include "deps/process.h"
#include "base/sha256.h"

namespace onemcp::deps {
namespace {

const std::set<std::string> kModules = {"lodash", "esm-pkg", "esm-pkg/extra", "@scope/pkg"};

std::string rewrite(std::string_view code) {
  auto r = rewrite_imports(code, kModules);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : "";
}

std::string rewrite_error(std::string_view code) {
  auto r = rewrite_imports(code, kModules);
  EXPECT_FALSE(r.ok()) << *r;
  return r.ok() ? "" : r.error().message;
}

TEST(ImportsTest, RewritesLeadingDeclarations) {
  EXPECT_EQ(rewrite("import _ from 'lodash'; _.chunk([1], 1)"),
            "const _ = __onemcp_import(\"lodash\").default; _.chunk([1], 1)");
  EXPECT_EQ(rewrite("import * as m from \"esm-pkg\"\nm"),
            "const m = __onemcp_import(\"esm-pkg\");\nm");
  EXPECT_EQ(rewrite("import { a, b as c, default as d } from 'esm-pkg';"),
            "const { a, b: c, default: d } = __onemcp_import(\"esm-pkg\");");
  EXPECT_EQ(rewrite("import x, { y } from '@scope/pkg';"),
            "const x = __onemcp_import(\"@scope/pkg\").default, { y } = "
            "__onemcp_import(\"@scope/pkg\");");
  EXPECT_EQ(rewrite("import x, * as ns from 'lodash';"),
            "const x = __onemcp_import(\"lodash\").default, ns = __onemcp_import(\"lodash\");");
  EXPECT_EQ(rewrite("import 'esm-pkg/extra';"), "__onemcp_import(\"esm-pkg/extra\");");
  EXPECT_EQ(rewrite("import { 'odd-name' as o } from 'lodash';"),
            "const { \"odd-name\": o } = __onemcp_import(\"lodash\");");
  EXPECT_EQ(rewrite("import x = require('lodash');"), "const x = require(\"lodash\");");
  EXPECT_EQ(rewrite("import from from 'lodash';"),
            "const from = __onemcp_import(\"lodash\").default;");
}

TEST(ImportsTest, KeepsLineNumbersAndTheRest) {
  std::string code =
      "// leading comment\n"
      "import {\n  a,\n  b,\n} from 'lodash'\n"
      "/* block */ import c from 'esm-pkg';\n"
      "const d = await a(b, c);\n"
      "import e from 'lodash';\n";
  std::string out = rewrite(code);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), std::count(code.begin(), code.end(), '\n'));
  EXPECT_EQ(out,
            "// leading comment\n"
            "const { a, b } = __onemcp_import(\"lodash\");\n\n\n\n"
            "/* block */ const c = __onemcp_import(\"esm-pkg\").default;\n"
            "const d = await a(b, c);\n"
            "import e from 'lodash';\n");  // after another statement: left to the runtime
  EXPECT_EQ(rewrite("1 + 1"), "1 + 1");
  EXPECT_EQ(rewrite("import('lodash')"), "import('lodash')");
  EXPECT_EQ(rewrite("import.meta"), "import.meta");
  EXPECT_EQ(rewrite("importx = 1"), "importx = 1");
}

TEST(ImportsTest, TypeScriptTypeImportsAreErased) {
  EXPECT_EQ(rewrite("import type { T } from 'anything-at-all';\nlet t: T;"), "\nlet t: T;");
  EXPECT_EQ(rewrite("import type X from './types';"), "");
  EXPECT_EQ(rewrite("import { type T, a } from 'lodash';"),
            "const { a } = __onemcp_import(\"lodash\");");
  EXPECT_EQ(rewrite("import { type T } from 'lodash';"), "");
  EXPECT_EQ(rewrite("import type from 'lodash';"),
            "const type = __onemcp_import(\"lodash\").default;");
  EXPECT_EQ(rewrite("import {} from 'lodash';"), "");
  EXPECT_EQ(rewrite("import data from 'lodash' with { type: 'json' };"),
            "const data = __onemcp_import(\"lodash\").default;");
}

TEST(ImportsTest, RefusesAnythingButTheLayersModulesAndTheRuntimesBuiltins) {
  for (const char* code : {"import x from './x'", "import '/etc/passwd'", "import os from 'os'",
                           "import x from 'lodash/../../etc'", "import x from 'other'",
                           "import x from 'esm-pkg/missing'", "import x from 'node:path'",
                           "import x from 'fs/../x'", "import x from 'node:fs/x'"}) {
    std::string e = rewrite_error(code);
    EXPECT_NE(e.find("cannot import"), std::string::npos) << e;
    EXPECT_NE(e.find("importable: @scope/pkg, esm-pkg, esm-pkg/extra, lodash, fs, fs/promises)"),
              std::string::npos)
        << e;
  }
  // Only leading declarations are read; a later one is the runtime's to refuse.
  EXPECT_EQ(rewrite("const a = 1;\nimport y from './y'"), "const a = 1;\nimport y from './y'");
  EXPECT_NE(rewrite_error("import x from 'lodash\\u0041'").find("line 1: cannot read"),
            std::string::npos);
  EXPECT_NE(rewrite_error("\n\nimport { a b } from 'lodash'").find("line 3"), std::string::npos);
  EXPECT_NE(rewrite_error("import x from").find("cannot read"), std::string::npos);
}

// Node's fs is the runtime's own: importable in every run, with or without npm dependencies.
TEST(ImportsTest, TheRuntimesBuiltinsAreImportableWithOrWithoutALayer) {
  EXPECT_EQ(rewrite("import fs, { readFileSync as r } from 'node:fs';\nimport * as p from "
                    "'fs/promises';\nr('x')"),
            "const fs = __onemcp_import(\"node:fs\").default, { readFileSync: r } = "
            "__onemcp_import(\"node:fs\");\nconst p = __onemcp_import(\"fs/promises\");\nr('x')");
  auto plain = rewrite_imports(
      "import { writeFileSync } from 'fs'\nimport fsp from "
      "'node:fs/promises';\nwriteFileSync('/out/a', 'b')",
      {});
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(*plain,
            "const { writeFileSync } = __onemcp_import(\"fs\");\nconst fsp = "
            "__onemcp_import(\"node:fs/promises\").default;\nwriteFileSync('/out/a', 'b')");
  auto other = rewrite_imports("import _ from 'lodash'", {});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("(importable: fs, fs/promises)"), std::string::npos)
      << other.error().message;
  for (const char* yes : {"fs", "node:fs", "fs/promises", "node:fs/promises"})
    EXPECT_TRUE(is_runtime_builtin(yes)) << yes;
  for (const char* no : {"os", "node:os", "fs/", "node:", "fs/promises/x", "node:node:fs", "FS"})
    EXPECT_FALSE(is_runtime_builtin(no)) << no;
}

TEST(NpmTest, PackageNames) {
  for (const char* ok : {"lodash", "left-pad", "@scope/pkg", "a.b_c~d", "JSONStream", "x"}) {
    EXPECT_TRUE(valid_package_name(ok)) << ok;
  }
  for (const char* bad :
       {"", "../evil", "./x", "/abs", ".hidden", "_under", "a/b", "@scope", "@scope/", "@/x", "a b",
        "a:b", "http://x", "node_modules", "a@1", "@sc/../x", "x\n"}) {
    EXPECT_FALSE(valid_package_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_package_name(std::string(215, 'a')));
}

TEST(NpmTest, VersionRanges) {
  for (const char* ok :
       {"^4.17.21", "~1.2", "1.x", "*", "", "latest", ">=1.0.0 <2.0.0 || 3", "1.0.0-beta.1+b2"}) {
    EXPECT_TRUE(valid_version_range(ok)) << ok;
  }
  for (const char* bad :
       {"file:../../etc", "git+https://github.com/a/b.git", "https://x/y.tgz", "link:../x",
        "npm:lodash@4", "github:user/repo", "user/repo", "../x", "./x", "~/x", "/etc/passwd",
        "x.tgz", "evil.tar.gz", "1.0.0.TAR", "workspace:*", ".", "C:\\x", "a\nb"}) {
    EXPECT_FALSE(valid_version_range(bad)) << bad;
  }
  auto s = validate_dependencies({{"x", "file:../../etc"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("x: unsupported version \"file:../../etc\""), std::string::npos);
  s = validate_dependencies({{"../evil", "1"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("invalid package name \"../evil\""), std::string::npos);
  Dependencies many;
  for (int i = 0; i < 65; ++i) many["p" + std::to_string(i)] = "1";
  EXPECT_FALSE(validate_dependencies(many).ok());
}

TEST(NpmTest, MergeLetsTheCallWin) {
  Dependencies merged = merge_dependencies({{"a", "1"}, {"b", "2"}}, {{"b", "3"}, {"c", "4"}});
  EXPECT_EQ(merged, (Dependencies{{"a", "1"}, {"b", "3"}, {"c", "4"}}));
}

TEST(NpmTest, Sha256AndHelpers) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Longer than a block and not a multiple of one: the SHA-extension path of libcrypto.
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(last_lines("a\n\x1b[31mb\x1b[0m\n\nc\r\n", 2), "b\nc");
  EXPECT_EQ(find_in_path("sh", "relative:/nonexistent:/bin"), "/bin/sh");
  EXPECT_EQ(find_in_path("no-such-program-here", "/bin"), "");
}

}  // namespace
}  // namespace onemcp::deps
