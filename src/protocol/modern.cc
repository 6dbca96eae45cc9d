#include "protocol/modern.h"

#include <algorithm>

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

}  // namespace

std::vector<std::string> modern_versions() { return {kModernProtocol}; }

bool is_modern(const Message& m, const std::optional<std::string>& header_version) {
  if (const json* meta = meta_of(m); meta && meta->contains(kMetaProtocolVersion)) return true;
  // Version strings are dates: they order as text.
  return header_version && *header_version >= kModernProtocol;
}

std::optional<ModernRefusal> check_modern(const Message& m, const ModernHeaders* headers) {
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
  }
  const auto supported = modern_versions();
  if (std::find(supported.begin(), supported.end(), asked) == supported.end()) {
    return refuse(m, kUnsupportedProtocolVersion, "Unsupported protocol version",
                  json{{"supported", supported}, {"requested", asked}});
  }
  return std::nullopt;
}

}  // namespace onemcp::protocol
