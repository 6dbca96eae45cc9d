// fuzz_config — 1mcp.config.json and a call's arguments: policy::parse_config, the schema
// validator (config schema inside parse_config, the run_js/run_py input schemas), and tighten().
// Input: JSON text. Checks, beyond "no crash, no escaping exception":
//   - the catch-alls that exist "for documents that should never get there" never fire;
//   - a parsed config survives to_json → parse_config unchanged;
//   - tightening a policy by itself (to_json) gives the same policy.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "policy/config.h"
#include "policy/schema.h"
#include "policy/schemas.h"

namespace {

using nlohmann::json;
namespace policy = onemcp::policy;

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// validate() turns an exception from inside the validator into this message.
void check_validate(const json& schema, const json& instance) {
  auto s = policy::validate(schema, instance);
  if (!s && starts_with(s.error().message, "(root): cannot be checked (")) __builtin_trap();
}

void check_tighten(const policy::Policy& base, const json& partial) {
  auto t = policy::tighten(base, partial);
  if (!t && starts_with(t.error().message, "policy: cannot be applied (")) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  json j;
  try {
    j = json::parse(data, data + size, nullptr, false);
  } catch (const std::exception&) {
    return 0;
  }
  if (j.is_discarded()) return 0;

  auto c = policy::parse_config(j);
  if (!c) {
    if (starts_with(c.error().message, "invalid config: ")) __builtin_trap();
  } else {
    auto again = policy::parse_config(policy::to_json(c.value()));
    if (!again || !(again.value() == c.value())) __builtin_trap();
    auto self = policy::tighten(c->policy, policy::to_json(c->policy));
    if (!self || !(self.value() == c->policy)) __builtin_trap();
  }

  check_validate(policy::run_js_input_schema(), j);
  check_validate(policy::run_py_input_schema(), j);
  check_tighten(policy::Policy{}, j.is_object() && j.contains("policy") ? j["policy"] : j);
  return 0;
}
