#include "policy/schemas.h"

#include <cstdlib>

#include "policy/embedded_schemas.h"

namespace onemcp::policy {

using nlohmann::json;

namespace {

// Parsed once and never destroyed, so the schemas stay usable during static destruction.
// Both checks are build invariants covered by the unit tests: the file is embedded and is a JSON
// object.
const json& parsed(std::string_view file_name) {
  auto text = schema_text(file_name);
  if (!text) std::abort();
  const json* j = new json(json::parse(*text, nullptr, /*allow_exceptions=*/false));
  if (!j->is_object()) std::abort();
  return *j;
}

}  // namespace

const json& config_schema() {
  static const json& j = parsed("config.schema.json");
  return j;
}

const json& run_js_input_schema() {
  static const json& j = parsed("run_js.input.schema.json");
  return j;
}

const json& run_py_input_schema() {
  static const json& j = parsed("run_py.input.schema.json");
  return j;
}

const json& run_output_schema() {
  static const json& j = parsed("run.output.schema.json");
  return j;
}

const json& capsule_manifest_schema() {
  static const json& j = parsed("capsule.manifest.schema.json");
  return j;
}

const json& events_schema() {
  static const json& j = parsed("events.schema.json");
  return j;
}

const json& partial_policy_schema() {
  static const json& j = run_js_input_schema().at("properties").at("policy");
  return j;
}

std::optional<std::string_view> schema_text(std::string_view file_name) {
  for (size_t i = 0; i < embedded::kFileCount; ++i) {
    if (file_name == embedded::kFiles[i].name) {
      return std::string_view(reinterpret_cast<const char*>(embedded::kFiles[i].data),
                              embedded::kFiles[i].size);
    }
  }
  return std::nullopt;
}

std::vector<std::string_view> schema_file_names() {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < embedded::kFileCount; ++i) out.push_back(embedded::kFiles[i].name);
  return out;
}

}  // namespace onemcp::policy
