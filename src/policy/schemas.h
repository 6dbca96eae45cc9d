// policy/schemas.h — the files of types/ (JSON Schemas, TypeScript definitions), embedded in the
// binary at build time.
// Thread-safety: the accessors parse once (thread-safe static init) and return immutable data.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace onemcp::policy {

const nlohmann::json& config_schema();            // types/config.schema.json
const nlohmann::json& run_js_input_schema();      // types/run_js.input.schema.json
const nlohmann::json& run_py_input_schema();      // types/run_py.input.schema.json
const nlohmann::json& run_output_schema();        // types/run.output.schema.json
const nlohmann::json& capsule_manifest_schema();  // types/capsule.manifest.schema.json
const nlohmann::json& events_schema();            // types/events.schema.json

// The call-level `policy` argument (identical in both tool input schemas).
const nlohmann::json& partial_policy_schema();

// The embedded bytes of types/<file_name> (e.g. "config.schema.json", "index.d.ts"), or nullopt.
std::optional<std::string_view> schema_text(std::string_view file_name);
// File names of every embedded file of types/.
std::vector<std::string_view> schema_file_names();

}  // namespace onemcp::policy
