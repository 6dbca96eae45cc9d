// types/*.schema.json against the code that reads and writes each JSON: the capsule manifest
// (to_json / manifest_from_json), the run result (tool_result), the config (to_json /
// parse_config) and the example configs. A field added to the code without the schema, or to the
// schema without the code, fails here. (Notifications are checked in mcp_server_test.cc.)
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <set>

#include "capsule/crypto.h"
#include "capsule/manifest.h"
#include "policy/config.h"
#include "policy/schema.h"
#include "policy/schemas.h"
#include "server/tools.h"

namespace onemcp {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::set<std::string> keys(const json& object) {
  std::set<std::string> out;
  for (const auto& [k, _] : object.items()) out.insert(k);
  return out;
}

std::set<std::string> properties(const json& schema) { return keys(schema.at("properties")); }

std::set<std::string> required(const json& schema) {
  return schema.value("required", std::set<std::string>{});
}

// The schema's properties are exactly `value`'s keys, at every level where both are objects (an
// array is compared through its first element). With `all_required`, so is `required`.
void same_keys(const json& schema, const json& value, const std::string& where, bool all_required) {
  if (!schema.contains("properties") || !value.is_object()) return;
  EXPECT_EQ(properties(schema), keys(value)) << where;
  if (all_required) {
    EXPECT_EQ(required(schema), keys(value)) << where << " (required)";
  }
  for (const auto& [k, sub] : schema["properties"].items()) {
    if (!value.contains(k)) continue;
    const json& v = value[k];
    if (v.is_object()) same_keys(sub, v, where + "." + k, all_required);
    if (v.is_array() && !v.empty() && sub.contains("items")) {
      same_keys(sub["items"], v[0], where + "." + k + "[0]", all_required);
    }
  }
}

void expect_valid(const json& schema, const json& value, const std::string& what) {
  auto s = policy::validate(schema, value);
  EXPECT_TRUE(s) << what << ": " << (s ? "" : s.error().message) << "\n" << value.dump();
}

// ---- capsule manifest ----

capsule::Manifest manifest() {
  capsule::Manifest m;
  m.language = "py";
  m.runtime = {"cpython", "3.11"};
  m.entry.argv = {"main.py", "--n", "3"};
  m.entry.env = {{"A", "1"}, {"LANG", "C.UTF-8"}};
  m.entry.cwd = "/work";
  m.layers.push_back({"code", "code", "code.py", capsule::sha256_hex("print(1)"), 8});
  m.layers.push_back({"deps", "deps", "deps.tar", capsule::sha256_hex(""), 0});
  m.policy = policy::to_json(policy::Policy{});
  m.created_at = "2025-01-02T03:04:05Z";
  m.signature = {"ed25519", std::string(64, 'a'), std::string(128, 'b')};
  return m;
}

TEST(TypesInSync, ManifestsValidateAgainstTheSchema) {
  capsule::Manifest m = manifest();
  expect_valid(policy::capsule_manifest_schema(), capsule::to_json(m), "full");
  m.layers.clear();
  m.entry = {};
  m.language = "js";
  m.policy = json::object();
  expect_valid(policy::capsule_manifest_schema(), capsule::to_json(m), "empty");
}

TEST(TypesInSync, ManifestSchemaHasExactlyTheFieldsOfToJson) {
  // manifest_from_json requires every field, so the schema requires every property too.
  same_keys(policy::capsule_manifest_schema(), capsule::to_json(manifest()), "manifest", true);
}

TEST(TypesInSync, ManifestSchemaAcceptsWhatTheParserAccepts) {
  // Edits of a valid manifest.json: the schema and manifest_from_json must agree on each. Not
  // expressible in the schema (and stated in its descriptions instead): unique layer names and
  // files, integers only inside policy.
  struct Case {
    std::string what;
    std::function<void(json&)> edit;
    bool valid;
  };
  std::vector<Case> cases = {
      {"as built", [](json&) {}, true},
      {"unknown field", [](json& j) { j["extra"] = 1; }, false},
      {"version 2", [](json& j) { j["version"] = 2; }, false},
      {"version as a string", [](json& j) { j["version"] = "1"; }, false},
      {"language rb", [](json& j) { j["language"] = "rb"; }, false},
      {"runtime.id empty", [](json& j) { j["runtime"]["id"] = ""; }, false},
      {"runtime.version a number", [](json& j) { j["runtime"]["version"] = 3; }, false},
      {"runtime unknown field", [](json& j) { j["runtime"]["x"] = "y"; }, false},
      {"entry.argv numbers", [](json& j) { j["entry"]["argv"] = {1}; }, false},
      {"entry.env a number", [](json& j) { j["entry"]["env"]["A"] = 1; }, false},
      {"entry.env any name", [](json& j) { j["entry"]["env"]["1 x"] = "v"; }, true},
      {"entry.cwd empty", [](json& j) { j["entry"]["cwd"] = ""; }, true},
      {"entry.cwd a number", [](json& j) { j["entry"]["cwd"] = 5; }, false},
      {"entry unknown field", [](json& j) { j["entry"]["stdin"] = ""; }, false},
      {"layers an object", [](json& j) { j["layers"] = json::object(); }, false},
      {"no layers", [](json& j) { j["layers"] = json::array(); }, true},
      {"layer unknown field", [](json& j) { j["layers"][0]["mode"] = 1; }, false},
      {"layer name empty", [](json& j) { j["layers"][0]["name"] = ""; }, false},
      {"layer name 64", [](json& j) { j["layers"][0]["name"] = std::string(64, 'n'); }, true},
      {"layer name 65", [](json& j) { j["layers"][0]["name"] = std::string(65, 'n'); }, false},
      {"layer name a/b", [](json& j) { j["layers"][0]["name"] = "a/b"; }, false},
      {"layer name .x", [](json& j) { j["layers"][0]["name"] = ".x"; }, true},
      {"layer kind lib", [](json& j) { j["layers"][0]["kind"] = "lib"; }, false},
      {"layer file .hidden", [](json& j) { j["layers"][0]["file"] = ".hidden"; }, false},
      {"layer file manifest.json", [](json& j) { j["layers"][0]["file"] = "manifest.json"; },
       false},
      {"layer file a/b", [](json& j) { j["layers"][0]["file"] = "a/b"; }, false},
      {"layer file a..b", [](json& j) { j["layers"][0]["file"] = "a..b"; }, true},
      {"layer file 128", [](json& j) { j["layers"][0]["file"] = std::string(128, 'f'); }, true},
      {"layer file 129", [](json& j) { j["layers"][0]["file"] = std::string(129, 'f'); }, false},
      {"layer sha256 upper case", [](json& j) { j["layers"][0]["sha256"] = std::string(64, 'A'); },
       false},
      {"layer sha256 63", [](json& j) { j["layers"][0]["sha256"] = std::string(63, 'a'); }, false},
      {"layer size -1", [](json& j) { j["layers"][0]["size"] = -1; }, false},
      {"layer size a string", [](json& j) { j["layers"][0]["size"] = "1"; }, false},
      {"layer size 2^63", [](json& j) { j["layers"][0]["size"] = uint64_t{1} << 63; }, true},
      {"policy an array", [](json& j) { j["policy"] = json::array(); }, false},
      {"policy empty", [](json& j) { j["policy"] = json::object(); }, true},
      {"createdAt a date", [](json& j) { j["createdAt"] = "2025-01-02"; }, false},
      {"createdAt with offset",
       [](json& j) { j["createdAt"] = "2025-01-02t03:04:05.123456+05:30"; }, true},
      {"createdAt 65 characters",
       [](json& j) { j["createdAt"] = "2025-01-02T03:04:05." + std::string(44, '1') + "Z"; },
       false},
      {"signature.alg rsa", [](json& j) { j["signature"]["alg"] = "rsa"; }, false},
      {"signature.publicKey short",
       [](json& j) { j["signature"]["publicKey"] = std::string(62, 'a'); }, false},
      {"signature.value upper case",
       [](json& j) { j["signature"]["value"] = std::string(128, 'B'); }, false},
      {"signature unknown field", [](json& j) { j["signature"]["keyId"] = "k"; }, false},
  };
  for (const char* k :
       {"version", "language", "runtime", "entry", "layers", "policy", "createdAt", "signature"}) {
    cases.push_back({std::string("without ") + k, [k](json& j) { j.erase(k); }, false});
  }
  for (const auto& c : cases) {
    json j = capsule::to_json(manifest());
    c.edit(j);
    auto parsed = capsule::manifest_from_json(j);
    auto checked = policy::validate(policy::capsule_manifest_schema(), j);
    EXPECT_EQ(parsed.ok(), c.valid)
        << c.what << ": manifest_from_json says " << (parsed ? "valid" : parsed.error().message);
    EXPECT_EQ(checked.ok(), c.valid)
        << c.what << ": the schema says " << (checked ? "valid" : checked.error().message);
  }
}

// ---- run result ----

TEST(TypesInSync, EveryOutcomeIsInTheResultSchemaAndNothingElse) {
  std::set<std::string> code;
  // `internal` is the last enumerator of sandbox::Outcome.
  for (int i = 0; i <= static_cast<int>(sandbox::Outcome::internal); ++i) {
    code.insert(sandbox::to_string(static_cast<sandbox::Outcome>(i)));
  }
  const json& outcome = policy::run_output_schema()["properties"]["outcome"];
  EXPECT_EQ(outcome["enum"].get<std::set<std::string>>(), code);
  for (const auto& o : code) {
    EXPECT_NE(outcome["description"].get<std::string>().find("\"" + o + "\""), std::string::npos)
        << o << " is not described";
  }
}

TEST(TypesInSync, RunResultsHaveTheSchemaFields) {
  server::RunSpec spec;
  spec.policy.limits.stdout_bytes = 4;
  std::vector<json> results;
  for (int i = 0; i <= static_cast<int>(sandbox::Outcome::internal); ++i) {
    sandbox::RunOutput o;
    o.outcome = static_cast<sandbox::Outcome>(i);
    o.exit_code = o.outcome == sandbox::Outcome::ok ? 0 : 1;
    o.duration_ms = 1.2345;
    for (auto lang : {server::Language::js, server::Language::py}) {
      spec.language = lang;
      results.push_back(server::tool_result(spec, o)["structuredContent"]);
    }
  }
  // Everything the builder can emit: value, files (text shown in full, and binary), truncation,
  // invalid UTF-8.
  sandbox::RunOutput full;
  full.out = "out\xff";
  full.err = "err\n";
  full.outcome = sandbox::Outcome::output_limit;
  full.exit_code = 137;
  full.truncated = true;
  full.report.value = "42";
  full.files.push_back({"a.txt", 3, "abc", false});
  full.files.push_back({"dir/b.bin", 2000000, std::string("\x00\xff", 2), true});
  full.capsule = std::string(64, 'a');
  full.live = sandbox::LiveCall{1, false, "a new interpreter (why)"};
  spec.language = server::Language::js;
  json max = server::tool_result(
      spec, full, {"0123456789abcdef0123456789abcdef", true, {}})["structuredContent"];
  results.push_back(max);

  const json& schema = policy::run_output_schema();
  for (const auto& r : results) {
    expect_valid(schema, r, "structuredContent");
    for (const auto& k : keys(r)) EXPECT_TRUE(properties(schema).count(k)) << k;
    for (const auto& k : required(schema)) EXPECT_TRUE(r.contains(k)) << k;
  }
  same_keys(schema, max, "structuredContent", false);
  // Fields the builder always sets are required; the others are not.
  EXPECT_EQ(required(schema), keys(results[0]));
  // A file's fields are all required but its content (shown for small text files only).
  EXPECT_EQ(required(schema["properties"]["files"]["items"]), keys(max["files"][1]));
}

// ---- config ----

TEST(TypesInSync, ConfigSchemaHasTheFieldsTheCodeReadsAndWrites) {
  // Every field of Config set away from its default, so to_json writes all of them.
  policy::Config c;
  c.language = "py";
  c.npm = {{"dependencies", {{"lodash", "^4.17.21"}}},
           {"lockfile", "package-lock.json"},
           {"registry", "https://registry.example.com/"}};
  c.pip = {{"requirements", {"requests==2.32.3"}}};
  c.policy.network = {{"example.com"}, {"bad.example.com"}, false, false, 1000, 2};
  c.policy.filesystem = {{"/data"}, {"/tmp"}};
  c.policy.limits = {1000, 64, 4096};
  c.policy.mcps = {"fs/read"};
  c.mcps.push_back({"fs", "stdio", "npx", {"-y", "x"}, {{"HOME", "/tmp"}}, "", {}});
  c.mcps.push_back({"web", "http", "", {}, {}, "http://localhost:1/mcp", {{"X-A", "b"}}, true});
  c.code_mode.describe = "full";
  c.mounts.push_back({"/srv/data", "/data", "rw"});
  c.session_ttl_ms = 5000;
  c.server = {{"mcp.example.com", "localhost:9000"},
              {"http://localhost:6274"},
              8,
              3,
              100,
              10,
              50,
              64,
              16,
              2000,
              3000,
              500};
  c.signing_key_path = "keys/";
  c.cache_dir = "cache/";
  c.auth.tokens.push_back({"ci", std::string(64, 'a')});
  c.auth.oauth = policy::OAuthConfig{"https://auth.example.com",
                                     "https://mcp.example.com/mcp",
                                     {"https://auth.example.com", "http://127.0.0.1:9/as"},
                                     "",
                                     "https://auth.example.com/jwks.json",
                                     {"mcp:run"},
                                     30};

  const json j = policy::to_json(c);
  const json& schema = policy::config_schema();
  expect_valid(schema, j, "to_json(Config)");
  auto back = policy::parse_config(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, c) << "a field written by to_json is not read back by parse_config";

  std::set<std::string> top = properties(schema);
  top.erase("$schema");  // for editors; the server ignores it
  EXPECT_EQ(top, keys(j));
  same_keys(schema["properties"]["policy"], j["policy"], "policy", false);
  same_keys(schema["properties"]["server"], j["server"], "server", false);
  same_keys(schema["properties"]["mounts"]["items"], j["mounts"][0], "mounts[0]", false);
  // auth.oauth is written with one of jwksUrl and jwksFile.
  policy::Config file = c;
  file.auth.oauth->jwks_url.clear();
  file.auth.oauth->jwks_file = "keys/jwks.json";
  const json jf = policy::to_json(file);
  expect_valid(schema, jf, "to_json(Config) with a jwksFile");
  auto file_back = policy::parse_config(jf);
  ASSERT_TRUE(file_back) << file_back.error().message;
  EXPECT_EQ(*file_back, file);
  const json& auth_schema = schema["properties"]["auth"];
  EXPECT_EQ(properties(auth_schema), keys(j["auth"]));
  same_keys(auth_schema["properties"]["tokens"]["items"], j["auth"]["tokens"][0], "auth.tokens[0]",
            true);
  std::set<std::string> oauth = keys(j["auth"]["oauth"]);
  oauth.merge(keys(jf["auth"]["oauth"]));
  EXPECT_EQ(properties(auth_schema["properties"]["oauth"]), oauth);
  // An upstream is written with the fields of its transport only.
  std::set<std::string> upstream = keys(j["mcps"][0]);
  upstream.merge(keys(j["mcps"][1]));
  EXPECT_EQ(properties(schema["$defs"]["upstream"]), upstream);
}

TEST(TypesInSync, EveryExampleConfigIsValid) {
  int n = 0;
  for (const auto& dir : fs::directory_iterator(fs::path(ONEMCP_SOURCE_DIR) / "examples")) {
    fs::path file = dir.path() / "1mcp.config.json";
    if (!fs::exists(file)) continue;
    ++n;
    auto c = policy::load_config(file.string());
    EXPECT_TRUE(c) << (c ? "" : c.error().message);
  }
  EXPECT_GT(n, 0);
}

}  // namespace
}  // namespace onemcp
