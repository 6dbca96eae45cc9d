// protocol/jsonrpc.h — JSON-RPC 2.0 as MCP uses it, with no I/O: a message is parsed once into a
// request, notification, response or error (or refused, with the code and id to answer with),
// the error codes, the builders of outgoing messages, and the table of MCP methods. The server's
// HTTP and stdio front ends and the upstream client all read messages through parse().
// Thread-safety: pure functions and constant data.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace onemcp::protocol {

// JSON-RPC 2.0's codes, then MCP's and this server's conventions.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kServerBusy = -32000;  // retryable: data.retryAfterMs
inline constexpr int kSessionNotFound = -32001;
inline constexpr int kShuttingDown = -32003;
inline constexpr int kResourceNotFound = -32002;  // legacy era; the stateless era uses -32602

struct Message {
  enum class Kind { request, notification, response, error };
  Kind kind = Kind::request;
  nlohmann::json id;      // request, response: a string or an integer; error: that or null
  std::string method;     // request, notification
  nlohmann::json params;  // request, notification: always an object ({} when absent)
  nlohmann::json result;  // response
  nlohmann::json error;   // error: the error object as sent

  bool is_request() const { return kind == Kind::request; }
  bool is_notification() const { return kind == Kind::notification; }
};

// A message that cannot be taken: answered with `code` and `message` under `id` (null when the
// id could not be read), or — `answer` false — dropped in silence (a notification or response
// that is malformed: JSON-RPC answers neither).
struct Refusal {
  int code = kInvalidRequest;
  std::string message;
  nlohmann::json id;
  bool answer = true;
};

using Item = std::variant<Message, Refusal>;

struct Parsed {
  bool batch = false;       // the text was an array: `items` are its elements, in order
  std::vector<Item> items;  // one unless `batch`; a batch may be empty
};

// Parses one message's text (an HTTP body, a stdio line, an SSE event's data). Text that is not
// JSON, or nested deeper than kMaxJsonDepth, is one Refusal with kParseError. Never throws.
Parsed parse(std::string_view text);
// Classifies one JSON value (a message, or an element of a batch).
Item classify(const nlohmann::json& value);

bool valid_id(const nlohmann::json& id);

// Outgoing messages. A request's and notification's params are always an object.
nlohmann::json request(const nlohmann::json& id, const std::string& method,
                       nlohmann::json params = nlohmann::json::object());
nlohmann::json response(const nlohmann::json& id, nlohmann::json result);
nlohmann::json error(const nlohmann::json& id, int code, const std::string& message);
nlohmann::json error(const nlohmann::json& id, int code, const std::string& message,
                     nlohmann::json data);
nlohmann::json error(const Refusal& r);
nlohmann::json notification(const std::string& method, nlohmann::json params = nullptr);
// Compact text of a message; invalid UTF-8 in strings becomes U+FFFD instead of throwing.
std::string dump(const nlohmann::json& message);

// The MCP methods this server and client know, and which direction they go.
enum class Method {
  unknown,
  initialize,
  initialized,  // notifications/initialized
  ping,
  tools_list,
  tools_call,
  cancelled,  // notifications/cancelled
  progress,   // notifications/progress
  tools_list_changed,
  resources_list,
  resources_templates_list,
  resources_read,
  logging_set_level,
  message,  // notifications/message
};
Method method_of(std::string_view name);
std::string_view name_of(Method m);

}  // namespace onemcp::protocol
