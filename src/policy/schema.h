// policy/schema.h — a small JSON Schema (2020-12 subset) validator with plain-words errors.
// Thread-safety: pure functions; safe to call concurrently.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace onemcp::policy {

// Validates `instance` against `schema`. Supported keywords: type (incl. arrays of types;
// "integer" = a number with no fractional part that fits in int64/uint64), properties, required,
// additionalProperties, items, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
// minLength, maxLength (in code points), minItems, maxItems, uniqueItems, pattern (ECMAScript,
// unanchored), propertyNames, minProperties, maxProperties, allOf, anyOf, oneOf, not,
// if/then/else, $ref to a JSON pointer inside `schema` ("#/$defs/x"), boolean schemas.
// Annotations ($schema, $id, $comment, title, description, default, examples, and MCP's
// x-mcp-header) are ignored.
// Patterns come only from our own schemas; a string longer than its maxLength is reported
// without running the pattern, which bounds the regex engine's recursion.
//
// On failure every error (at most kMaxErrors, in the order found) is reported, joined by "; ",
// each as "<path>: <problem>", e.g. `policy.limits.timeoutMs: must be an integer from 1 to
// 600000 (got -5)`. `root_path` prefixes every path ("" → fields are named from the top).
Status validate(const nlohmann::json& schema, const nlohmann::json& instance,
                std::string_view root_path = "");

inline constexpr size_t kMaxErrors = 20;

// The keywords validate() understands (validation and annotation); a schema using anything
// else is a mistake in the schema.
bool is_supported_keyword(std::string_view keyword);

// "a.b[2]" style path helpers, shared with the semantic checks of config.cc.
std::string join_path(std::string_view parent, std::string_view key);
std::string join_path(std::string_view parent, size_t index);

}  // namespace onemcp::policy
