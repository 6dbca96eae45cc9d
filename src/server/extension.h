// server/extension.h — tools, resources and prompts served beside 1mcp's own through the same
// protocol code (both eras, HTTP and stdio). The product sets none; the conformance suite's
// fixture module (tests/conformance/fixtures.cc) is one, served only when the test build asks.
// Thread-safety: every method may be called from any thread at once.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace onemcp::server {

class McpExtension {
 public:
  virtual ~McpExtension() = default;

  // Reports of a call in progress, sent to the caller on the call's own stream.
  struct CallContext {
    std::function<void(double progress, double total, const std::string& message)> progress;
    std::function<void(const std::string& level, const nlohmann::json& data)> log;
  };

  virtual nlohmann::json tools() const = 0;  // Tool objects
  // The CallToolResult of one of its tools; nullopt: not one of them.
  virtual std::optional<nlohmann::json> call(const std::string& name,
                                             const nlohmann::json& arguments,
                                             const CallContext& ctx) = 0;
  virtual nlohmann::json resources() const = 0;           // Resource objects
  virtual nlohmann::json resource_templates() const = 0;  // ResourceTemplate objects
  // The ReadResourceResult; nullopt: no such resource.
  virtual std::optional<nlohmann::json> read(const std::string& uri) = 0;
  virtual nlohmann::json prompts() const = 0;  // Prompt objects
  // The GetPromptResult; nullopt: no such prompt.
  virtual std::optional<nlohmann::json> get_prompt(const std::string& name,
                                                   const nlohmann::json& arguments) = 0;
  // The CompleteResult of completion/complete's params.
  virtual nlohmann::json complete(const nlohmann::json& params) = 0;
};

}  // namespace onemcp::server
