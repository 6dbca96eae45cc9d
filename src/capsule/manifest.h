// capsule/manifest.h — a capsule's manifest.json: the struct, its JSON form, and the capsule id.
// Thread-safety: pure functions and value types.
//
// The capsule id (its "hash", also its directory name) is the lowercase hex SHA-256 of the
// manifest's canonical JSON. Canonical JSON is the manifest object without "signature" and
// "createdAt", serialised by nlohmann::json's dump() with no indent and ensure_ascii off:
//   - object keys sorted by their UTF-8 bytes (unsigned byte order), at every level, policy too;
//   - no whitespace outside strings;
//   - strings as raw UTF-8; only '"', '\\' and U+0000..U+001F are escaped, as \" \\ \b \f \n \r
//     \t or \u00xx (lowercase hex); invalid UTF-8 is an error, never replaced;
//   - numbers are integers (a manifest with a fractional or exponent number is refused), written
//     in plain decimal.
// For ASCII keys this equals JavaScript's JSON.stringify with recursively sorted keys.
//
// The signature is Ed25519 over signed_message(id): the 16 bytes "1mcp-capsule-v1\0" followed by
// the 32 raw bytes of the id (the prefix keeps a capsule signature from meaning anything else).
// "createdAt" is informational: it is neither part of the id nor signed.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onemcp::capsule {

struct Runtime {
  std::string id;       // "quickjs" | "cpython"
  std::string version;  // "2021-03-27", "3.11"
  bool operator==(const Runtime&) const = default;
};

struct Entry {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd;
  bool operator==(const Entry&) const = default;
};

struct Layer {
  std::string name;    // unique within the capsule: "code", "deps"
  std::string kind;    // "code" | "deps"
  std::string file;    // plain file name inside the capsule directory (is_layer_file_name)
  std::string sha256;  // lowercase hex of the file's bytes
  uint64_t size = 0;   // the file's length in bytes
  bool operator==(const Layer&) const = default;
};

struct Signature {
  std::string alg = "ed25519";
  std::string public_key;  // 64 lowercase hex digits
  std::string value;       // 128 lowercase hex digits
  bool operator==(const Signature&) const = default;
};

struct Manifest {
  int version = 1;
  std::string language;  // "js" | "py"
  Runtime runtime;
  Entry entry;
  std::vector<Layer> layers;
  nlohmann::json policy = nlohmann::json::object();  // the effective policy; opaque here
  std::string created_at;                            // RFC 3339, UTC: "2025-01-02T03:04:05Z"
  Signature signature;
  bool operator==(const Manifest&) const = default;
};

inline constexpr std::string_view kManifestFile = "manifest.json";

nlohmann::json to_json(const Manifest& m);  // camelCase keys, as stored in manifest.json

// Strict: every field present with its type, no unknown field, version 1, a valid signature
// *shape* (the signature itself is checked by the store). Errors name the field.
Result<Manifest> manifest_from_json(const nlohmann::json& j);
// JSON text (depth-limited) → manifest_from_json.
Result<Manifest> parse_manifest(std::string_view text);

// Checks everything that goes into the id (not signature or createdAt): what a manifest must
// satisfy before it is hashed and signed.
Status validate_unsigned(const Manifest& m);

// The canonical JSON described above; errors on invalid UTF-8 or a failed validate_unsigned.
Result<std::string> canonical_json(const Manifest& m);
// Lowercase hex SHA-256 of canonical_json(m).
Result<std::string> capsule_hash(const Manifest& m);
// The bytes the Ed25519 signature covers; `hash` must satisfy is_capsule_hash.
std::string signed_message(std::string_view hash);

// Exactly 64 lowercase hex digits.
bool is_capsule_hash(std::string_view s);
// 1..128 of [A-Za-z0-9._-], not starting with '.', not "manifest.json": a name that can only
// mean one plain file inside the capsule directory.
bool is_layer_file_name(std::string_view s);
// RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM), at most 64 characters.
bool is_rfc3339(std::string_view s);

}  // namespace onemcp::capsule
