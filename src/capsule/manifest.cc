#include "capsule/manifest.h"

#include <algorithm>
#include <initializer_list>
#include <set>

#include "base/json_depth.h"
#include "capsule/crypto.h"

namespace onemcp::capsule {

using nlohmann::json;

namespace {

constexpr std::string_view kSignaturePrefix{"1mcp-capsule-v1\0", 16};

bool is_lower_hex(std::string_view s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool name_chars(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Reads one manifest object field by field; the first problem is kept, naming its path.
class Reader {
 public:
  Reader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  // The object itself, with exactly `keys`.
  bool object(std::initializer_list<std::string_view> keys) {
    if (!j_.is_object()) return fail(path_, "expected an object");
    for (const auto& [k, v] : j_.items()) {
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
        return fail(path_.empty() ? k : path_ + "." + k, "unknown field");
      }
    }
    for (std::string_view k : keys) {
      if (!j_.contains(k)) return fail(sub(k), "missing");
    }
    return true;
  }
  bool string(std::string_view key, std::string& out) {
    const json& v = j_.at(key);
    if (!v.is_string()) return fail(sub(key), "expected a string");
    out = v.get<std::string>();
    return true;
  }
  bool u64(std::string_view key, uint64_t& out) {
    const json& v = j_.at(key);
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return fail(sub(key), "expected a non-negative integer");
    }
    out = v.get<uint64_t>();
    return true;
  }
  bool strings(std::string_view key, std::vector<std::string>& out) {
    const json& v = j_.at(key);
    if (!v.is_array() ||
        !std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
      return fail(sub(key), "expected an array of strings");
    }
    out = v.get<std::vector<std::string>>();
    return true;
  }
  bool string_map(std::string_view key, std::map<std::string, std::string>& out) {
    const json& v = j_.at(key);
    if (!v.is_object()) return fail(sub(key), "expected an object of strings");
    for (const auto& [k, e] : v.items()) {
      if (!e.is_string()) return fail(sub(key) + "." + k, "expected a string");
      out[k] = e.get<std::string>();
    }
    return true;
  }
  Reader child(std::string_view key) const { return Reader(j_.at(key), sub(key)); }
  bool fail(const std::string& where, const std::string& what) {
    if (error_.empty())
      error_ = "manifest: " + (where.empty() ? std::string("top level") : where) + ": " + what;
    return false;
  }
  const std::string& error() const { return error_; }
  void adopt(const Reader& r) {
    if (error_.empty()) error_ = r.error_;
  }

 private:
  std::string sub(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  const json& j_;
  std::string path_;
  std::string error_;
};

bool integers_only(const json& j) {
  if (j.is_number_float()) return false;
  if (j.is_structured()) {
    for (const auto& e : j) {
      if (!integers_only(e)) return false;
    }
  }
  return true;
}

bool digits(std::string_view s, size_t from, size_t n) {
  if (from + n > s.size()) return false;
  for (size_t i = from; i < from + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

}  // namespace

bool is_capsule_hash(std::string_view s) { return is_lower_hex(s, 64); }

bool is_layer_file_name(std::string_view s) {
  return !s.empty() && s.size() <= 128 && s[0] != '.' && name_chars(s) && s != kManifestFile;
}

bool is_rfc3339(std::string_view s) {
  // 2025-01-02T03:04:05 then optional .fraction then Z or +hh:mm / -hh:mm; at most 64
  // characters, as types/capsule.manifest.schema.json says.
  if (s.size() < 20 || s.size() > 64 || !digits(s, 0, 4) || s[4] != '-' || !digits(s, 5, 2) ||
      s[7] != '-' || !digits(s, 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2) ||
      s[13] != ':' || !digits(s, 14, 2) || s[16] != ':' || !digits(s, 17, 2)) {
    return false;
  }
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return false;
  }
  std::string_view zone = s.substr(i);
  if (zone == "Z" || zone == "z") return true;
  return zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone, 1, 2) &&
         zone[3] == ':' && digits(zone, 4, 2);
}

json to_json(const Manifest& m) {
  json layers = json::array();
  for (const Layer& l : m.layers) {
    layers.push_back({{"name", l.name},
                      {"kind", l.kind},
                      {"file", l.file},
                      {"sha256", l.sha256},
                      {"size", l.size}});
  }
  return {{"version", m.version},
          {"language", m.language},
          {"runtime", {{"id", m.runtime.id}, {"version", m.runtime.version}}},
          {"entry", {{"argv", m.entry.argv}, {"env", m.entry.env}, {"cwd", m.entry.cwd}}},
          {"layers", std::move(layers)},
          {"policy", m.policy},
          {"createdAt", m.created_at},
          {"signature",
           {{"alg", m.signature.alg},
            {"publicKey", m.signature.public_key},
            {"value", m.signature.value}}}};
}

Status validate_unsigned(const Manifest& m) {
  auto err = [](const std::string& s) { return make_error("manifest: " + s); };
  if (m.version != 1)
    return err("version: unsupported (" + std::to_string(m.version) + "), expected 1");
  if (m.language != "js" && m.language != "py") return err("language: expected \"js\" or \"py\"");
  if (m.runtime.id.empty() || m.runtime.version.empty())
    return err("runtime: id and version must be set");
  if (!m.policy.is_object()) return err("policy: expected an object");
  if (!integers_only(m.policy)) return err("policy: numbers must be integers");
  std::set<std::string> names, files;
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const Layer& l = m.layers[i];
    std::string at = "layers[" + std::to_string(i) + "]";
    if (l.name.empty() || l.name.size() > 64 || !name_chars(l.name)) {
      return err(at + ".name: expected 1..64 of [A-Za-z0-9._-]");
    }
    if (l.kind != "code" && l.kind != "deps")
      return err(at + ".kind: expected \"code\" or \"deps\"");
    if (!is_layer_file_name(l.file))
      return err(at + ".file: not a plain file name: \"" + l.file + "\"");
    if (!is_lower_hex(l.sha256, 64)) return err(at + ".sha256: expected 64 lowercase hex digits");
    if (!names.insert(l.name).second) return err(at + ".name: duplicate \"" + l.name + "\"");
    if (!files.insert(l.file).second) return err(at + ".file: duplicate \"" + l.file + "\"");
  }
  return {};
}

Result<Manifest> manifest_from_json(const json& j) {
  Manifest m;
  Reader r(j, "");
  uint64_t version = 0;
  if (!r.object({"version", "language", "runtime", "entry", "layers", "policy", "createdAt",
                 "signature"}) ||
      !r.u64("version", version) || !r.string("language", m.language) ||
      !r.string("createdAt", m.created_at)) {
    return make_error(r.error());
  }
  if (version != 1)
    return make_error("manifest: version: unsupported (" + j.at("version").dump() +
                      "), expected 1");
  if (!is_rfc3339(m.created_at))
    return make_error("manifest: createdAt: expected an RFC 3339 date-time");

  Reader rt = r.child("runtime");
  if (!rt.object({"id", "version"}) || !rt.string("id", m.runtime.id) ||
      !rt.string("version", m.runtime.version)) {
    return make_error(rt.error());
  }
  Reader en = r.child("entry");
  if (!en.object({"argv", "env", "cwd"}) || !en.strings("argv", m.entry.argv) ||
      !en.string_map("env", m.entry.env) || !en.string("cwd", m.entry.cwd)) {
    return make_error(en.error());
  }
  const json& layers = j.at("layers");
  if (!layers.is_array()) return make_error("manifest: layers: expected an array");
  for (size_t i = 0; i < layers.size(); ++i) {
    Reader lr(layers[i], "layers[" + std::to_string(i) + "]");
    Layer l;
    if (!lr.object({"name", "kind", "file", "sha256", "size"}) || !lr.string("name", l.name) ||
        !lr.string("kind", l.kind) || !lr.string("file", l.file) ||
        !lr.string("sha256", l.sha256) || !lr.u64("size", l.size)) {
      return make_error(lr.error());
    }
    m.layers.push_back(std::move(l));
  }
  m.policy = j.at("policy");
  Reader sg = r.child("signature");
  if (!sg.object({"alg", "publicKey", "value"}) || !sg.string("alg", m.signature.alg) ||
      !sg.string("publicKey", m.signature.public_key) || !sg.string("value", m.signature.value)) {
    return make_error(sg.error());
  }
  if (m.signature.alg != "ed25519")
    return make_error("manifest: signature.alg: expected \"ed25519\"");
  if (!is_lower_hex(m.signature.public_key, 64)) {
    return make_error("manifest: signature.publicKey: expected 64 lowercase hex digits");
  }
  if (!is_lower_hex(m.signature.value, 128)) {
    return make_error("manifest: signature.value: expected 128 lowercase hex digits");
  }
  if (auto s = validate_unsigned(m); !s) return s.error();
  return m;
}

Result<Manifest> parse_manifest(std::string_view text) {
  if (!json_depth_within(text)) return make_error("manifest: nested too deeply");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("manifest: not valid JSON");
  return manifest_from_json(j);
}

Result<std::string> canonical_json(const Manifest& m) {
  if (auto s = validate_unsigned(m); !s) return s.error();
  json j = to_json(m);
  j.erase("signature");
  j.erase("createdAt");
  try {
    return j.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::strict);
  } catch (const json::exception&) {
    return make_error("manifest: a string is not valid UTF-8");
  }
}

Result<std::string> capsule_hash(const Manifest& m) {
  auto canonical = canonical_json(m);
  if (!canonical) return canonical.error();
  return sha256_hex(*canonical);
}

std::string signed_message(std::string_view hash) {
  return std::string(kSignaturePrefix) + from_hex(hash).value_or(std::string());
}

}  // namespace onemcp::capsule
