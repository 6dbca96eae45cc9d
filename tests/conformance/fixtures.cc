// The official MCP conformance suite's fixtures (the tools, resources and prompts its scenarios
// call by name, as its reference "everything" server has them), served through 1mcp's own
// protocol code as an McpExtension. Test builds only: `1mcp serve` adds them when
// ONEMCP_CONFORMANCE_FIXTURES=1 is set, never otherwise. Not here: what needs the server to send
// requests to the client (sampling, elicitation, roots) or the stateless era's multi-round-trip
// results, which 1mcp does not do.
#include "tests/conformance/fixtures.h"

#include <chrono>
#include <regex>
#include <thread>

namespace onemcp::conformance {
namespace {

using nlohmann::json;

// A 1×1 PNG and a WAV header with no samples.
constexpr const char* kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg"
    "==";
constexpr const char* kWav = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

json text(const std::string& t) { return {{"type", "text"}, {"text", t}}; }
json image() { return {{"type", "image"}, {"data", kPng}, {"mimeType", "image/png"}}; }
json embedded(const std::string& uri, const std::string& t) {
  return {{"type", "resource"},
          {"resource", {{"uri", uri}, {"mimeType", "text/plain"}, {"text", t}}}};
}
json tool(const char* name, const char* description) {
  return {{"name", name},
          {"description", description},
          {"inputSchema", {{"type", "object"}, {"properties", json::object()}}}};
}
void pause() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

class Fixtures final : public server::McpExtension {
 public:
  json tools() const override {
    return json::array(
        {tool("test_simple_text", "Returns a simple text response"),
         tool("test_image_content", "Returns an image"),
         tool("test_audio_content", "Returns audio (WAV)"),
         tool("test_embedded_resource", "Returns an embedded resource"),
         tool("test_multiple_content_types", "Returns text, an image and a resource"),
         tool("test_tool_with_logging", "Sends log messages while it runs"),
         tool("test_tool_with_progress", "Reports progress while it runs"),
         tool("test_error_handling", "Returns a tool error")});
  }

  std::optional<json> call(const std::string& name, const json&, const CallContext& ctx) override {
    auto content = [](json blocks) { return json{{"content", std::move(blocks)}}; };
    if (name == "test_simple_text")
      return content({text("This is a simple text response for testing.")});
    if (name == "test_image_content") return content({image()});
    if (name == "test_audio_content") {
      return content({{{"type", "audio"}, {"data", kWav}, {"mimeType", "audio/wav"}}});
    }
    if (name == "test_embedded_resource") {
      return content(
          {embedded("test://embedded-resource", "This is an embedded resource content.")});
    }
    if (name == "test_multiple_content_types") {
      return content({text("Multiple content types test:"), image(),
                      embedded("test://mixed-content-resource", "Resource in mixed content")});
    }
    if (name == "test_tool_with_logging") {
      for (const char* m :
           {"Tool execution started", "Tool processing data", "Tool execution completed"}) {
        ctx.log("info", m);
        pause();
      }
      return content({text("Tool with logging executed successfully")});
    }
    if (name == "test_tool_with_progress") {
      for (double p : {0.0, 50.0, 100.0}) {
        ctx.progress(p, 100, "Completed step " + std::to_string(int(p)) + " of 100");
        pause();
      }
      return content({text("Progress test completed")});
    }
    if (name == "test_error_handling") {
      json r = content({text("This tool intentionally returns an error for testing")});
      r["isError"] = true;
      return r;
    }
    return std::nullopt;
  }

  json resources() const override {
    return json::array({{{"uri", "test://static-text"},
                         {"name", "Static Text Resource"},
                         {"description", "A static text resource for testing"},
                         {"mimeType", "text/plain"}},
                        {{"uri", "test://static-binary"},
                         {"name", "Static Binary Resource"},
                         {"description", "A static binary resource (image) for testing"},
                         {"mimeType", "image/png"}},
                        {{"uri", "test://watched-resource"},
                         {"name", "Watched Resource"},
                         {"description", "A resource that can be subscribed to"},
                         {"mimeType", "text/plain"}}});
  }

  json resource_templates() const override {
    return json::array({{{"uriTemplate", "test://template/{id}/data"},
                         {"name", "Resource Template"},
                         {"description", "A resource template with a parameter"},
                         {"mimeType", "application/json"}}});
  }

  std::optional<json> read(const std::string& uri) override {
    auto one = [&](json c) {
      c["uri"] = uri;
      return json{{"contents", json::array({std::move(c)})}};
    };
    if (uri == "test://static-text") {
      return one({{"mimeType", "text/plain"},
                  {"text", "This is the content of the static text resource."}});
    }
    if (uri == "test://static-binary") return one({{"mimeType", "image/png"}, {"blob", kPng}});
    if (uri == "test://watched-resource")
      return one({{"mimeType", "text/plain"}, {"text", "Watched resource content"}});
    static const std::regex kTemplate("^test://template/([^/]+)/data$");
    std::smatch m;
    if (std::regex_match(uri, m, kTemplate)) {
      const std::string id = m[1];
      return one(
          {{"mimeType", "application/json"},
           {"text",
            json{{"id", id}, {"templateTest", true}, {"data", "Data for ID: " + id}}.dump()}});
    }
    return std::nullopt;
  }

  json prompts() const override {
    auto arg = [](const char* name, const char* description) {
      return json{{"name", name}, {"description", description}, {"required", true}};
    };
    return json::array(
        {{{"name", "test_simple_prompt"}, {"description", "A simple prompt without arguments"}},
         {{"name", "test_prompt_with_arguments"},
          {"description", "A prompt with arguments"},
          {"arguments", {arg("arg1", "First test argument"), arg("arg2", "Second test argument")}}},
         {{"name", "test_prompt_with_embedded_resource"},
          {"description", "A prompt with an embedded resource"},
          {"arguments", {arg("resourceUri", "URI of the resource to embed")}}},
         {{"name", "test_prompt_with_image"}, {"description", "A prompt with an image"}}});
  }

  std::optional<json> get_prompt(const std::string& name, const json& args) override {
    auto user = [](json content) {
      return json{{"role", "user"}, {"content", std::move(content)}};
    };
    auto messages = [](json list) { return json{{"messages", std::move(list)}}; };
    auto str = [&](const char* k) {
      return args.contains(k) && args[k].is_string() ? args[k].get<std::string>() : std::string();
    };
    if (name == "test_simple_prompt")
      return messages({user(text("This is a simple prompt for testing."))});
    if (name == "test_prompt_with_arguments") {
      return messages({user(
          text("Prompt with arguments: arg1='" + str("arg1") + "', arg2='" + str("arg2") + "'"))});
    }
    if (name == "test_prompt_with_embedded_resource") {
      return messages({user(embedded(str("resourceUri"), "Embedded resource content for testing.")),
                       user(text("Please process the embedded resource above."))});
    }
    if (name == "test_prompt_with_image") {
      return messages({user(image()), user(text("Please analyze the image above."))});
    }
    return std::nullopt;
  }

  json complete(const json&) override {
    return {{"completion", {{"values", json::array()}, {"total", 0}, {"hasMore", false}}}};
  }
};

}  // namespace

std::unique_ptr<server::McpExtension> make_fixtures() { return std::make_unique<Fixtures>(); }

}  // namespace onemcp::conformance
