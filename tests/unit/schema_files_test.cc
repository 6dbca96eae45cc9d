// types/*.json: valid, documented, only keywords the validator knows, consistent with each
// other and with the code, and identical to what the binary embeds.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "policy/config.h"
#include "policy/schema.h"
#include "policy/schemas.h"

namespace onemcp::policy {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kTypes = fs::path(ONEMCP_SOURCE_DIR) / "types";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Named {
  const char* file;
  const json& (*schema)();
};
const Named kSchemas[] = {{"config.schema.json", config_schema},
                          {"run_js.input.schema.json", run_js_input_schema},
                          {"run_py.input.schema.json", run_py_input_schema},
                          {"run.output.schema.json", run_output_schema},
                          {"capsule.manifest.schema.json", capsule_manifest_schema},
                          {"events.schema.json", events_schema}};

// Calls f(schema, where) on every subschema.
void walk(const json& s, const std::string& where,
          const std::function<void(const json&, const std::string&)>& f) {
  if (!s.is_object()) return;
  f(s, where);
  for (const char* k :
       {"items", "additionalProperties", "propertyNames", "not", "if", "then", "else"}) {
    if (s.contains(k)) walk(s[k], where + "/" + k, f);
  }
  for (const char* k : {"properties", "$defs"}) {
    if (s.contains(k)) {
      for (const auto& [name, sub] : s[k].items()) walk(sub, where + "/" + k + "/" + name, f);
    }
  }
  for (const char* k : {"allOf", "anyOf", "oneOf"}) {
    if (s.contains(k)) {
      for (size_t i = 0; i < s[k].size(); ++i)
        walk(s[k][i], where + "/" + k + "/" + std::to_string(i), f);
    }
  }
}

TEST(SchemaFiles, EmbeddedCopiesEqualTheRepository) {
  std::set<std::string> on_disk, embedded;
  for (const auto& e : fs::directory_iterator(kTypes)) {
    std::string name = e.path().filename().string();
    if (name.ends_with(".json") || name.ends_with(".d.ts")) on_disk.insert(name);
  }
  for (auto name : schema_file_names()) embedded.insert(std::string(name));
  EXPECT_EQ(on_disk, embedded)
      << "every types/*.json and types/*.d.ts must be listed in src/policy/CMakeLists.txt";
  for (const auto& name : embedded) {
    auto text = schema_text(name);
    ASSERT_TRUE(text);
    EXPECT_EQ(std::string(*text), slurp(kTypes / name)) << name << " is stale: rebuild";
  }
  EXPECT_FALSE(schema_text("nope.json"));
}

TEST(SchemaFiles, ParseAsObjectsAndUseOnlySupportedKeywords) {
  for (const auto& n : kSchemas) {
    const json& s = n.schema();
    ASSERT_TRUE(s.is_object()) << n.file;
    EXPECT_EQ(s.value("type", ""), "object") << n.file;
    walk(s, n.file, [](const json& sub, const std::string& where) {
      for (const auto& [k, _] : sub.items()) {
        EXPECT_TRUE(is_supported_keyword(k)) << where << ": unsupported keyword " << k;
      }
    });
  }
}

TEST(SchemaFiles, EveryPropertyHasADescription) {
  for (const auto& n : kSchemas) {
    EXPECT_TRUE(n.schema().contains("description")) << n.file;
    walk(n.schema(), n.file, [](const json& sub, const std::string& where) {
      if (where.find("/if") != std::string::npos) return;  // conditions are not documentation
      for (const char* k : {"properties", "$defs"}) {
        if (!sub.contains(k)) continue;
        for (const auto& [name, p] : sub[k].items()) {
          EXPECT_TRUE(p.is_object() && p.contains("description") &&
                      !p["description"].get<std::string>().empty())
              << where << "/" << k << "/" << name;
        }
      }
      for (const char* k : {"items", "additionalProperties"}) {
        if (sub.contains(k) && sub[k].is_object()) {
          EXPECT_TRUE(sub[k].contains("description") || sub[k].contains("$ref"))
              << where << "/" << k;
        }
      }
    });
  }
}

TEST(SchemaFiles, ObjectsAreClosedAndPatternsBounded) {
  for (const auto& n : kSchemas) {
    walk(n.schema(), n.file, [](const json& sub, const std::string& where) {
      // Conditional branches add rules to an object that is closed where it is declared.
      if (where.find("/if") != std::string::npos || where.find("/then") != std::string::npos)
        return;
      if (sub.contains("properties")) {
        EXPECT_EQ(sub.value("additionalProperties", json(true)), json(false)) << where;
      }
      // The regex engine recurses per character: every patterned string has a maxLength, except
      // anchored prefixes that never look past a few characters.
      if (sub.contains("pattern")) {
        std::string p = sub["pattern"];
        bool prefix_only = p == "^/" || p == "^https?://" || p == "^https?://[^/?#\\s]";
        EXPECT_TRUE(sub.contains("maxLength") || prefix_only) << where;
      }
    });
  }
}

TEST(SchemaFiles, ToolSchemasAreSelfContained) {
  // Sent to MCP clients as inputSchema/outputSchema: no references a client must resolve.
  for (const auto& n : kSchemas) {
    if (std::string(n.file).find(".input.") == std::string::npos &&
        std::string(n.file).find(".output.") == std::string::npos) {
      continue;
    }
    std::string text = n.schema().dump();
    EXPECT_EQ(text.find("$ref"), std::string::npos) << n.file;
    EXPECT_EQ(text.find("$defs"), std::string::npos) << n.file;
  }
  EXPECT_EQ(run_js_input_schema()["required"], json::array({"code"}));
  EXPECT_EQ(run_py_input_schema()["required"], json::array({"code"}));
  EXPECT_TRUE(run_js_input_schema()["properties"].contains("npm"));
  EXPECT_FALSE(run_js_input_schema()["properties"].contains("pip"));
  EXPECT_TRUE(run_py_input_schema()["properties"].contains("pip"));
  EXPECT_FALSE(run_py_input_schema()["properties"].contains("npm"));
}

// Drops annotations and maxima, which legitimately differ between the config's policy and a
// call's partial policy.
json shape(json s) {
  if (s.is_object()) {
    for (const char* k : {"description", "default", "title", "maximum"}) s.erase(k);
    for (auto& [_, v] : s.items()) v = shape(v);
  } else if (s.is_array()) {
    for (auto& v : s) v = shape(v);
  }
  return s;
}

TEST(SchemaFiles, CallPolicyHasTheConfigPolicyShape) {
  EXPECT_EQ(run_js_input_schema()["properties"]["policy"],
            run_py_input_schema()["properties"]["policy"]);
  EXPECT_EQ(partial_policy_schema(), run_js_input_schema()["properties"]["policy"]);
  json cfg = shape(config_schema()["properties"]["policy"]);
  json call = shape(partial_policy_schema());
  EXPECT_EQ(cfg, call);
  // A call may ask for more than the server allows (clamped), so only the config has maxima.
  const json& lim = partial_policy_schema()["properties"]["limits"]["properties"];
  for (const char* k : {"timeoutMs", "memMb", "stdoutBytes"}) {
    EXPECT_FALSE(lim[k].contains("maximum")) << k;
    EXPECT_NE(lim[k]["description"].get<std::string>().find("clamped"), std::string::npos) << k;
  }
}

TEST(SchemaFiles, ConfigMaximaAreTheServerMaxima) {
  const json& lim = config_schema()["properties"]["policy"]["properties"]["limits"]["properties"];
  EXPECT_EQ(lim["timeoutMs"]["maximum"], kMaxLimits.timeout_ms);
  EXPECT_EQ(lim["memMb"]["maximum"], kMaxLimits.mem_mb);
  EXPECT_EQ(lim["stdoutBytes"]["maximum"], kMaxLimits.stdout_bytes);
}

TEST(SchemaFiles, ConfigDefaultsMatchTheCode) {
  json d = to_json(Policy{});
  const json& p = config_schema()["properties"]["policy"]["properties"];
  for (const char* section : {"network", "filesystem", "limits"}) {
    for (const auto& [k, v] : d[section].items()) {
      EXPECT_EQ(p[section]["properties"][k]["default"], v) << section << "." << k;
    }
  }
  const json& top = config_schema()["properties"];
  Config c;
  EXPECT_EQ(top["language"]["default"], c.language);
  EXPECT_EQ(top["sessionTtlMs"]["default"], c.session_ttl_ms);
  EXPECT_EQ(top["signingKeyPath"]["default"], c.signing_key_path);
  EXPECT_EQ(top["cacheDir"]["default"], c.cache_dir);
}

TEST(SchemaFiles, OutputSchemaAcceptsResults) {
  json ok = {{"stdout", "hi\n"},   {"stderr", ""},       {"exitCode", 0}, {"outcome", "ok"},
             {"durationMs", 12.5}, {"truncated", false}, {"value", "42"}};
  EXPECT_TRUE(validate(run_output_schema(), ok));
  ok.erase("value");
  EXPECT_TRUE(validate(run_output_schema(), ok));
  for (const char* o : {"ok", "error", "timeout", "memory", "output_limit", "policy_violation",
                        "crashed", "killed", "internal"}) {
    ok["outcome"] = o;
    EXPECT_TRUE(validate(run_output_schema(), ok)) << o;
  }
  ok["outcome"] = "exploded";
  EXPECT_FALSE(validate(run_output_schema(), ok));
  ok["outcome"] = "ok";
  ok["capsule"] = std::string(64, 'a');
  EXPECT_TRUE(validate(run_output_schema(), ok));
  for (std::string bad : {std::string(63, 'a'), std::string(64, 'A'), std::string(64, 'g')}) {
    ok["capsule"] = bad;
    EXPECT_FALSE(validate(run_output_schema(), ok)) << bad;
  }
  ok.erase("capsule");
  ok["extra"] = 1;
  EXPECT_FALSE(validate(run_output_schema(), ok));
}

TEST(SchemaFiles, ToolInputs) {
  EXPECT_TRUE(validate(run_js_input_schema(), {{"code", "1+1"}}));
  json full = {{"code", "x"},
               {"stdin", "in"},
               {"args", {"a"}},
               {"env", {{"A_B", "1"}}},
               {"cwd", "/tmp"},
               {"npm", {{"dependencies", {{"lodash", "^4"}}}}},
               {"policy", {{"limits", {{"timeoutMs", 999999999}}}}}};
  EXPECT_TRUE(validate(run_js_input_schema(), full));
  EXPECT_EQ(validate(run_js_input_schema(), json::object()).error().message, "code: required");
  EXPECT_EQ(validate(run_js_input_schema(), {{"code", "x"}, {"cwd", "tmp"}}).error().message,
            "cwd: must match the pattern ^/ (got \"tmp\")");
  EXPECT_EQ(
      validate(run_js_input_schema(), {{"code", "x"}, {"pip", json::object()}}).error().message,
      "pip: unknown field");
  EXPECT_EQ(
      validate(run_py_input_schema(), {{"code", "x"}, {"pip", json::object()}}).error().message,
      "pip.requirements: required");
  EXPECT_EQ(validate(run_py_input_schema(), {{"code", 1}}).error().message,
            "code: must be a string (got 1)");
  EXPECT_EQ(
      validate(run_py_input_schema(), {{"code", "x"}, {"env", {{"1X", "v"}}}}).error().message,
      "env[\"1X\"]: invalid field name: must match the pattern ^[A-Za-z_][A-Za-z0-9_]*$ (got "
      "\"1X\")");
}

}  // namespace
}  // namespace onemcp::policy
