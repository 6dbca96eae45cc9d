// cli/import.cc — see import.h.
#include "cli/import.h"

#include <algorithm>

namespace onemcp::cli {

using nlohmann::json;

namespace {

const char* const kClients[] = {"claude-desktop", "claude-code", "cursor", "vscode"};

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

// A valid `mcps` name: a letter, then letters, digits, "_" or "-", at most 64 characters.
std::string mcps_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    out += ok ? c : '-';
  }
  if (out.empty() || !((out[0] >= 'a' && out[0] <= 'z') || (out[0] >= 'A' && out[0] <= 'Z')))
    out = "mcp-" + out;
  if (out.size() > 64) out.resize(64);
  return out;
}

bool has_variable(const std::string& s) { return s.find("${") != std::string::npos; }

// A string → string object, or why not.
std::string string_map(const json& j, const char* what, json& out) {
  if (!j.is_object()) return std::string(what) + " is not an object";
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return std::string(what) + " " + k + " is not a string";
    if (has_variable(v.get<std::string>()) || has_variable(k))
      return std::string(what) + " " + k + " uses a ${...} variable the client fills in";
  }
  out = j;
  return {};
}

// One entry as `mcps` wants it, or why not.
std::string convert(const json& e, json& out) {
  if (!e.is_object()) return "not an object";
  if (e.value("disabled", false) == true) return "disabled in the client";
  for (const char* unsupported : {"cwd", "envFile"})
    if (e.contains(unsupported))
      return std::string(unsupported) + " is not supported by 1mcp's mcps";
  const std::string type =
      e.contains("type") && e["type"].is_string() ? e["type"].get<std::string>() : "";
  if (type == "sse") return "the SSE transport is not supported (1mcp speaks Streamable HTTP)";
  if (e.contains("command")) {
    if (!type.empty() && type != "stdio") return "type " + type + " with a command";
    if (!e["command"].is_string() || e["command"].get<std::string>().empty())
      return "command is not a string";
    const std::string command = e["command"];
    if (has_variable(command)) return "command uses a ${...} variable the client fills in";
    out = {{"transport", "stdio"}, {"command", command}};
    if (e.contains("args")) {
      if (!e["args"].is_array()) return "args is not an array";
      for (const auto& a : e["args"]) {
        if (!a.is_string()) return "an argument is not a string";
        if (has_variable(a.get<std::string>()))
          return "an argument uses a ${...} variable the client fills in";
      }
      if (!e["args"].empty()) out["args"] = e["args"];
    }
    if (e.contains("env")) {
      json env;
      if (auto why = string_map(e["env"], "env", env); !why.empty()) return why;
      for (const auto& [k, v] : env.items()) {
        const bool ok = !k.empty() && k.size() <= 256 &&
                        std::all_of(k.begin(), k.end(),
                                    [](char c) {
                                      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                             (c >= '0' && c <= '9') || c == '_';
                                    }) &&
                        !(k[0] >= '0' && k[0] <= '9');
        if (!ok) return "env " + k + " is not a variable name";
      }
      if (!env.empty()) out["env"] = env;
    }
    return {};
  }
  const char* url_key = e.contains("url") ? "url" : e.contains("serverUrl") ? "serverUrl" : nullptr;
  if (url_key) {
    if (!type.empty() && type != "http" && type != "streamable-http" && type != "streamableHttp")
      return "type " + type + " with a url";
    if (!e[url_key].is_string()) return "url is not a string";
    const std::string url = e[url_key];
    if (has_variable(url)) return "url uses a ${...} variable the client fills in";
    if (!(url.starts_with("http://") || url.starts_with("https://")) || url.size() > 2048)
      return "url is not an http(s) URL";
    out = {{"transport", "http"}, {"endpoint", url}};
    if (e.contains("headers")) {
      json headers;
      if (auto why = string_map(e["headers"], "header", headers); !why.empty()) return why;
      for (const auto& [k, v] : headers.items()) {
        if (v.get<std::string>().find_first_of("\r\n") != std::string::npos)
          return "header " + k + " has a line break";
      }
      if (!headers.empty()) out["headers"] = headers;
    }
    return {};
  }
  return "neither a command nor a url";
}

}  // namespace

bool import_client_known(std::string_view client) {
  return std::find(std::begin(kClients), std::end(kClients), client) != std::end(kClients);
}

std::vector<std::string> import_default_paths(std::string_view client, const std::string& home,
                                              const std::string& xdg_config,
                                              const std::string& cwd) {
  const std::string config = !xdg_config.empty() ? xdg_config : home + "/.config";
  if (client == "claude-desktop") {
    return {config + "/Claude/claude_desktop_config.json",
            home + "/Library/Application Support/Claude/claude_desktop_config.json"};
  }
  if (client == "claude-code") return {cwd + "/.mcp.json", home + "/.claude.json"};
  if (client == "cursor") return {cwd + "/.cursor/mcp.json", home + "/.cursor/mcp.json"};
  if (client == "vscode") return {cwd + "/.vscode/mcp.json", config + "/Code/User/mcp.json"};
  return {};
}

Result<Imported> import_servers(std::string_view client, const json& file,
                                const std::set<std::string>& taken) {
  if (!file.is_object()) return make_error("the file is not a JSON object");
  const json* servers = nullptr;
  if (client == "vscode") {
    if (file.contains("servers"))
      servers = &file["servers"];
    else if (file.contains("mcp") && file["mcp"].is_object() && file["mcp"].contains("servers"))
      servers = &file["mcp"]["servers"];
  } else if (file.contains("mcpServers")) {
    servers = &file["mcpServers"];
  }
  const char* key = client == "vscode" ? "\"servers\"" : "\"mcpServers\"";
  if (!servers) return make_error(std::string("the file has no ") + key + " object");
  if (!servers->is_object()) return make_error(std::string(key) + " is not an object");
  Imported out;
  std::set<std::string> names = taken;
  for (const auto& [original, entry] : servers->items()) {
    json m;
    if (auto why = convert(entry, m); !why.empty()) {
      out.skipped.push_back(original + ": " + why);
      continue;
    }
    const std::string name = mcps_name(original);
    if (!names.insert(lower(name)).second) {
      out.skipped.push_back(original + ": the name " + name + " is already in mcps");
      continue;
    }
    m["name"] = name;
    if (m.contains("env") || m.contains("headers")) out.secrets = true;
    out.mcps.push_back(std::move(m));
  }
  return out;
}

}  // namespace onemcp::cli
