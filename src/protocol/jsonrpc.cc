#include "protocol/jsonrpc.h"

#include <array>
#include <utility>

#include "base/json_depth.h"

namespace onemcp::protocol {

using nlohmann::json;

namespace {

Refusal refuse(int code, std::string message, json id = nullptr) {
  return Refusal{code, std::move(message), std::move(id), true};
}
Refusal drop(std::string message) {
  return Refusal{kInvalidRequest, std::move(message), nullptr, false};
}

constexpr std::array<std::pair<Method, std::string_view>, 13> kMethods{{
    {Method::initialize, "initialize"},
    {Method::initialized, "notifications/initialized"},
    {Method::ping, "ping"},
    {Method::tools_list, "tools/list"},
    {Method::tools_call, "tools/call"},
    {Method::cancelled, "notifications/cancelled"},
    {Method::progress, "notifications/progress"},
    {Method::tools_list_changed, "notifications/tools/list_changed"},
    {Method::resources_list, "resources/list"},
    {Method::resources_templates_list, "resources/templates/list"},
    {Method::resources_read, "resources/read"},
    {Method::logging_set_level, "logging/setLevel"},
    {Method::message, "notifications/message"},
}};

}  // namespace

bool valid_id(const json& id) {
  return id.is_string() || id.is_number_integer() || id.is_number_unsigned();
}

Item classify(const json& v) {
  if (!v.is_object()) {
    return refuse(kInvalidRequest, v.is_array()
                                       ? "Invalid Request: a batch inside a batch"
                                       : "Invalid Request: expected a JSON-RPC 2.0 object");
  }
  const auto id_it = v.find("id");
  const bool has_id = id_it != v.end();
  const json id = has_id && valid_id(*id_it) ? *id_it : json(nullptr);
  const auto jsonrpc = v.find("jsonrpc");
  if (jsonrpc == v.end() || *jsonrpc != "2.0") {
    return refuse(kInvalidRequest, "Invalid Request: expected a JSON-RPC 2.0 object", id);
  }
  const auto method = v.find("method");
  if (method == v.end()) {
    const auto result = v.find("result");
    const auto error = v.find("error");
    if (result == v.end() && error == v.end()) {
      if (has_id) return refuse(kInvalidRequest, "Invalid Request: method is required");
      return drop("a JSON-RPC message with neither a method nor a result or error");
    }
    if (!has_id || (!valid_id(*id_it) && !(error != v.end() && id_it->is_null()))) {
      return drop("a response whose id is not a string or an integer");
    }
    Message m;
    m.id = *id_it;
    if (error != v.end()) {
      m.kind = Message::Kind::error;
      m.error = *error;
    } else {
      m.kind = Message::Kind::response;
      m.result = *result;
    }
    return m;
  }
  if (has_id && !valid_id(*id_it)) {
    return refuse(kInvalidRequest, "Invalid Request: id must be a string or integer");
  }
  if (!method->is_string()) {
    if (has_id) return refuse(kInvalidRequest, "Invalid Request: method must be a string", id);
    return drop("a notification whose method is not a string");
  }
  const auto params = v.find("params");
  if (params != v.end() && !params->is_object()) {
    if (has_id) return refuse(kInvalidParams, "Invalid params: params must be an object", id);
    return drop("a notification whose params are not an object");
  }
  Message m;
  m.kind = has_id ? Message::Kind::request : Message::Kind::notification;
  m.id = id;
  m.method = method->get<std::string>();
  m.params = params != v.end() ? *params : json::object();
  return m;
}

Parsed parse(std::string_view text) {
  Parsed out;
  json v(json::value_t::discarded);
  if (json_depth_within(text)) {
    try {  // nlohmann can throw even in non-throwing mode (e.g. a number out of range)
      v = json::parse(text, nullptr, false);
    } catch (const std::exception&) {
    }
  }
  if (v.is_discarded()) {
    out.items.push_back(refuse(kParseError, "Parse error: invalid JSON (or nested deeper than " +
                                                std::to_string(kMaxJsonDepth) + " levels)"));
    return out;
  }
  if (!v.is_array()) {
    out.items.push_back(classify(v));
    return out;
  }
  out.batch = true;
  out.items.reserve(v.size());
  for (const json& e : v) out.items.push_back(classify(e));
  return out;
}

json request(const json& id, const std::string& method, json params) {
  return json{{"jsonrpc", "2.0"},
              {"id", id},
              {"method", method},
              {"params", params.is_object() ? std::move(params) : json::object()}};
}

json response(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json error(const json& id, int code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json error(const json& id, int code, const std::string& message, json data) {
  json e = error(id, code, message);
  e["error"]["data"] = std::move(data);
  return e;
}

json error(const Refusal& r) { return error(r.id, r.code, r.message); }

json notification(const std::string& method, json params) {
  json n{{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) n["params"] = std::move(params);
  return n;
}

std::string dump(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

Method method_of(std::string_view name) {
  for (const auto& [m, n] : kMethods)
    if (n == name) return m;
  return Method::unknown;
}

std::string_view name_of(Method m) {
  for (const auto& [k, n] : kMethods)
    if (k == m) return n;
  return "";
}

}  // namespace onemcp::protocol
