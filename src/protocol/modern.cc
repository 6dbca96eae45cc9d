#include "protocol/modern.h"

#include <algorithm>
#include <cctype>

#include "base/base64.h"

namespace onemcp::protocol {

using nlohmann::json;

namespace {

const json* meta_of(const Message& m) {
  const auto meta = m.params.find("_meta");
  return meta != m.params.end() && meta->is_object() ? &*meta : nullptr;
}

ModernRefusal refuse(const Message& m, int code, const std::string& message, json data = nullptr) {
  return {400, data.is_null() ? error(m.id, code, message)
                              : error(m.id, code, message, std::move(data))};
}

// The body value Mcp-Name must repeat, for the methods that have one.
std::optional<std::string> name_in_body(const Message& m) {
  const char* field = m.method == "tools/call" || m.method == "prompts/get" ? "name"
                      : m.method == "resources/read"                        ? "uri"
                                                                            : nullptr;
  if (!field) return std::nullopt;
  const auto v = m.params.find(field);
  return v != m.params.end() && v->is_string() ? v->get<std::string>() : std::string();
}

// A header value as sent: "=?base64?...?=" carries bytes a header cannot (non-ASCII names).
std::optional<std::string> decoded(const std::optional<std::string>& v) {
  if (!v || !v->starts_with("=?base64?") || !v->ends_with("?=") || v->size() < 11) return v;
  return base64_decode(std::string_view(*v).substr(9, v->size() - 11));
}

// A mirrored argument's value as its header carries it; nullopt for a value no header carries
// (an object, an array, null, a number that is not an integer).
std::optional<std::string> header_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  return std::nullopt;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<MirroredParam> mirrored_params(const json& input_schema) {
  std::vector<MirroredParam> out;
  const auto props = input_schema.find("properties");
  if (props == input_schema.end() || !props->is_object()) return out;
  for (const auto& [name, schema] : props->items()) {
    const auto h = schema.is_object() ? schema.find("x-mcp-header") : schema.end();
    if (h != schema.end() && h->is_string()) out.push_back({name, h->get<std::string>()});
  }
  return out;
}

std::vector<std::string> modern_versions() { return {kModernProtocol}; }

bool is_modern(const Message& m, const std::optional<std::string>& header_version) {
  if (const json* meta = meta_of(m); meta && meta->contains(kMetaProtocolVersion)) return true;
  // Version strings are dates: they order as text.
  return header_version && *header_version >= kModernProtocol;
}

std::optional<ModernRefusal> check_modern(const Message& m, const ModernHeaders* headers,
                                          const std::vector<MirroredParam>& mirrored) {
  const json* meta = meta_of(m);
  const auto version = meta ? meta->find(kMetaProtocolVersion) : json::const_iterator();
  if (!meta || version == meta->end() || !version->is_string()) {
    return refuse(m, kInvalidParams,
                  std::string("Invalid params: _meta[\"") + kMetaProtocolVersion +
                      "\"] (a string) is required");
  }
  const auto caps = meta->find(kMetaClientCapabilities);
  if (caps == meta->end() || !caps->is_object()) {
    return refuse(m, kInvalidParams,
                  std::string("Invalid params: _meta[\"") + kMetaClientCapabilities +
                      "\"] (an object) is required");
  }
  const std::string asked = version->get<std::string>();
  if (headers) {
    auto mismatch = [&](const char* header, const std::optional<std::string>& sent,
                        const std::string& body) -> std::optional<ModernRefusal> {
      if (!sent)
        return refuse(m, kHeaderMismatch,
                      std::string("Header mismatch: ") + header + " is required");
      if (*sent != body) {
        return refuse(m, kHeaderMismatch,
                      std::string("Header mismatch: ") + header + " header value '" + *sent +
                          "' does not match body value '" + body + "'");
      }
      return std::nullopt;
    };
    if (auto r = mismatch("MCP-Protocol-Version", headers->protocol_version, asked)) return r;
    if (m.is_request()) {
      if (auto r = mismatch("Mcp-Method", headers->method, m.method)) return r;
      if (auto name = name_in_body(m)) {
        if (auto r = mismatch("Mcp-Name", decoded(headers->name), *name)) return r;
      }
    }
    const auto args = m.params.find("arguments");
    for (const auto& p : m.method == "tools/call" ? mirrored : std::vector<MirroredParam>{}) {
      const std::string header = "Mcp-Param-" + p.header;
      const auto sent = headers->params.find(lower(p.header));
      const bool has_arg = args != m.params.end() && args->is_object() &&
                           args->contains(p.argument) && !(*args)[p.argument].is_null();
      if (!has_arg) {
        if (sent == headers->params.end()) continue;
        return refuse(
            m, kHeaderMismatch,
            "Header mismatch: " + header + " was sent but the argument " + p.argument + " was not");
      }
      const auto body = header_text((*args)[p.argument]);
      if (!body) continue;  // not a value a header carries: the tool's schema refuses it
      if (sent == headers->params.end()) {
        return refuse(m, kHeaderMismatch,
                      "Header mismatch: " + header + " is required (the argument " + p.argument +
                          " is present)");
      }
      const auto value = decoded(sent->second);
      if (!value) {
        return refuse(m, kHeaderMismatch,
                      "Header mismatch: " + header + " is not valid =?base64?...?= encoding");
      }
      if (auto r = mismatch(header.c_str(), value, *body)) return r;
    }
  }
  const auto supported = modern_versions();
  if (std::find(supported.begin(), supported.end(), asked) == supported.end()) {
    return refuse(m, kUnsupportedProtocolVersion, "Unsupported protocol version",
                  json{{"supported", supported}, {"requested", asked}});
  }
  return std::nullopt;
}

}  // namespace onemcp::protocol
