// server/mcps_tree.cc — see mcps_tree.h.
#include "server/mcps_tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "base/sha256.h"

namespace onemcp::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string description_of(const json& tool) {
  auto it = tool.find("description");
  return it != tool.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string first_line(const std::string& text, size_t max = 160) {
  std::string d = text.substr(0, text.find('\n'));
  if (d.size() > max) d = d.substr(0, max - 3) + "...";
  return d;
}

std::string count(size_t n, const char* what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// "  path (string, required): The file to read" for each property of the input schema.
std::vector<std::string> argument_lines(const json& tool) {
  std::vector<std::string> out;
  const json in = tool.contains("inputSchema") ? tool["inputSchema"] : json::object();
  if (!in.is_object() || !in.contains("properties") || !in["properties"].is_object()) return out;
  std::set<std::string> required;
  if (in.contains("required") && in["required"].is_array())
    for (const auto& r : in["required"])
      if (r.is_string()) required.insert(r.get<std::string>());
  for (const auto& [k, v] : in["properties"].items()) {
    std::string line =
        k + " (" + typescript_type(v) + (required.count(k) ? ", required" : "") + ")";
    if (v.is_object() && v.contains("description") && v["description"].is_string())
      line += ": " + first_line(v["description"].get<std::string>());
    out.push_back(line);
  }
  return out;
}

std::string output_type(const json& tool) {
  return tool.contains("outputSchema") ? typescript_type(tool["outputSchema"]) : "McpContent[]";
}

std::string where(const CodeModeServer& s, const CodeModeTool& t) {
  return "tool \"" + t.name + "\" of the upstream MCP server \"" + s.name + "\"";
}

std::string tool_dts(const CodeModeServer& s, const CodeModeTool& t) {
  const json in = t.tool.contains("inputSchema") ? t.tool["inputSchema"] : json::object();
  std::string out = "// mcp." + s.ident + "." + t.ident + ": " + where(s, t) + ".\n" +
                    "// run_js: const result = await mcp." + s.ident + "." + t.ident + "(args);\n" +
                    "// run_py: from mcp_tools import " + s.ident + "; result = " + s.ident + "." +
                    t.ident + "(**args)\n";
  const auto args = argument_lines(t.tool);
  if (!args.empty()) {
    out += "//\n// Arguments:\n";
    for (const auto& a : args) out += "//   " + a + "\n";
  }
  out += "\n";
  if (!t.tool.contains("outputSchema")) out += std::string("export ") + kMcpContentType + "\n";
  out += "export type Input = " + typescript_type(in) + ";\n";
  out += "export type Output = " + output_type(t.tool) + ";\n\n";
  return out + tool_declaration(t, "export declare function " + t.ident) + ";\n";
}

// `text` inside a """docstring""".
std::string docstring_text(std::string text) {
  std::string out;
  for (char c : text) out += c == '\\' ? std::string("\\\\") : std::string(1, c);
  for (size_t p; (p = out.find("\"\"\"")) != std::string::npos;) out.replace(p, 3, "\\\"\\\"\\\"");
  return out;
}

std::string tool_pyi(const CodeModeServer& s, const CodeModeTool& t) {
  const json in = t.tool.contains("inputSchema") ? t.tool["inputSchema"] : json::object();
  std::string doc = description_of(t.tool);
  if (t.ident != t.name) doc = "`" + t.name + "` upstream." + (doc.empty() ? "" : "\n" + doc);
  doc += (doc.empty() ? "" : "\n\n") + std::string("Arguments (TypeScript notation): ") +
         typescript_type(in) + "\n";
  for (const auto& a : argument_lines(t.tool)) doc += "  " + a + "\n";
  doc += "Returns: " +
         (t.tool.contains("outputSchema")
              ? typescript_type(t.tool["outputSchema"]) + " (the tool's structuredContent)"
              : std::string("the tool's content blocks (a list of dicts)")) +
         "\nRaises mcp_tools.McpError when the tool fails.";
  std::string indented;
  for (size_t start = 0;;) {
    size_t nl = doc.find('\n', start);
    std::string line = doc.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    indented += (line.empty() || start == 0 ? "" : "    ") + line + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return "# mcp_tools." + s.ident + "." + t.ident + ": " + where(s, t) + ".\n" +
         "# Call: from mcp_tools import " + s.ident + "; result = " + s.ident + "." + t.ident +
         "(key=value, ...)  (or one dict)\n"
         "from typing import Any\n\n\n"
         "def " +
         t.ident + "(args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:\n    \"\"\"" +
         docstring_text(indented) + "    \"\"\"\n    ...\n";
}

std::string index_dts(const CodeModeServer& s) {
  std::string out = "// The upstream MCP server \"" + s.name +
                    "\": " + count(s.tools.size(), "tool") + ".\n// run_js: await mcp." + s.ident +
                    ".<tool>(args); run_py: from mcp_tools import " + s.ident + "; " + s.ident +
                    ".<tool>(**args)\n// Each tool's file (<tool>.d.ts, " +
                    "<tool>.pyi) has its description, argument and result types.\n//\n";
  for (const auto& t : s.tools) {
    const std::string d = first_line(description_of(t.tool));
    out += "// - " + t.ident + (d.empty() ? "" : ": " + d) + "\n";
  }
  out += "\n";
  for (const auto& t : s.tools)
    out += "export { " + t.ident + " } from \"./" + mcps_file_name(t.ident) + "\";\n";
  return out;
}

std::string readme(const std::vector<CodeModeServer>& allowed) {
  size_t tools = 0;
  for (const auto& s : allowed) tools += s.tools.size();
  std::string out =
      "# Upstream MCP tools\n\n"
      "The upstream MCP tools this run may call: " +
      count(allowed.size(), "server") + ", " + count(tools, "tool") +
      ".\n\n"
      "## Files\n\n"
      "- /mcps/README.md: this file\n"
      "- /mcps/types.d.ts: every tool below in one TypeScript declaration of `mcp`\n"
      "- /mcps/<server>/index.d.ts: the server's tools, one line each\n"
      "- /mcps/<server>/<tool>.d.ts: a tool's description, `Input` and `Output` types and "
      "signature\n"
      "- /mcps/<server>/<tool>.pyi: the same as a Python stub with a docstring\n\n"
      "## Calling a tool\n\n"
      "- run_js: `const result = await mcp.<server>.<tool>({ ...args })`. The result is the "
      "tool's\n"
      "  structuredContent when it has one, else its content blocks; a tool error rejects with an\n"
      "  Error named \"McpError\".\n"
      "- run_py: `from mcp_tools import <server>`, then `<server>.<tool>(key=value, ...)` (or one\n"
      "  dict). A tool error raises `mcp_tools.McpError`.\n"
      "- Finding tools: `await mcp.$search(\"words\")` (run_js), `mcp_tools.search(\"words\")`\n"
      "  (run_py), or the search_tools tool.\n\n"
      "## Servers\n\n";
  if (allowed.empty()) out += "None: no upstream tool this run may call is available now.\n";
  for (const auto& s : allowed) {
    out += "- " + s.ident + (s.ident == s.name ? "" : " (upstream \"" + s.name + "\")") + ": " +
           count(s.tools.size(), "tool") + ", /mcps/" + mcps_file_name(s.ident) + "/index.d.ts\n";
  }
  return out;
}

Status write_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return make_os_error(errno, path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      return make_os_error(e, path + ": " + std::strerror(e));
    }
    off += size_t(n);
  }
  // World-readable whatever the umask: the sandbox's uid reads it.
  int r = ::fchmod(fd, 0644);
  ::close(fd);
  if (r != 0) return make_os_error(errno, path + ": chmod: " + std::strerror(errno));
  return {};
}

}  // namespace

std::string mcps_file_name(std::string_view ident) {
  if (ident.size() <= kMaxFileStem) return std::string(ident);
  return std::string(ident.substr(0, kMaxFileStem - 17)) + "_" + sha256_hex(ident).substr(0, 16);
}

std::vector<TreeFile> mcps_tree_files(const std::vector<CodeModeServer>& allowed) {
  std::vector<TreeFile> files{{"README.md", readme(allowed)},
                              {"types.d.ts", typescript_declarations(allowed)}};
  for (const auto& s : allowed) {
    const std::string dir = mcps_file_name(s.ident) + "/";
    files.push_back({dir + "index.d.ts", index_dts(s)});
    for (const auto& t : s.tools) {
      const std::string stem = dir + mcps_file_name(t.ident);
      files.push_back({stem + ".d.ts", tool_dts(s, t)});
      files.push_back({stem + ".pyi", tool_pyi(s, t)});
    }
  }
  std::sort(files.begin(), files.end(),
            [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; });
  return files;
}

std::string mcps_tree_key(const std::vector<TreeFile>& files) {
  std::string all;
  for (const auto& f : files) {
    all += std::to_string(f.path.size()) + ":" + f.path + std::to_string(f.text.size()) + ":";
    all += f.text;
  }
  return sha256_hex(all);
}

Result<std::unique_ptr<McpsTrees>> McpsTrees::open(const std::string& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return make_error("cannot create " + root + ": " + ec.message());
  // Searchable by the sandbox's unprivileged uid, which reaches a run's tree through it.
  fs::permissions(root, fs::perms(0755), ec);
  if (ec) return make_error("cannot chmod " + root + ": " + ec.message());
  std::unique_ptr<McpsTrees> trees(new McpsTrees(root));
  std::lock_guard lk(trees->mu_);
  trees->remove_unused();
  return trees;
}

size_t McpsTrees::writes() const {
  std::lock_guard lk(mu_);
  return writes_;
}

void McpsTrees::remove_unused() {
  std::error_code ec;
  for (fs::directory_iterator it(root_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    auto t = trees_.find(name);
    if (t != trees_.end() && !t->second.expired()) continue;
    if (t != trees_.end()) trees_.erase(t);
    std::error_code rm;
    fs::remove_all(it->path(), rm);
  }
}

Result<std::shared_ptr<const McpsTrees::Tree>> McpsTrees::get(
    const std::vector<CodeModeServer>& allowed) {
  const std::vector<TreeFile> files = mcps_tree_files(allowed);
  const std::string key = mcps_tree_key(files);
  std::lock_guard lk(mu_);
  if (auto t = trees_.find(key); t != trees_.end()) {
    if (auto live = t->second.lock()) return live;
  }
  const std::string dir = root_ + "/" + key;
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    std::string tmp = root_ + "/.tmp-XXXXXX";
    if (!::mkdtemp(tmp.data()))
      return make_error("mkdtemp in " + root_ + ": " + std::strerror(errno));
    auto written = [&]() -> Status {
      if (::chmod(tmp.c_str(), 0755) != 0) return make_error(tmp + ": " + std::strerror(errno));
      for (const auto& f : files) {
        const size_t slash = f.path.find('/');
        if (slash != std::string::npos) {
          const std::string sub = tmp + "/" + f.path.substr(0, slash);
          if (::mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST)
            return make_error(sub + ": " + std::strerror(errno));
          if (::chmod(sub.c_str(), 0755) != 0) return make_error(sub + ": " + std::strerror(errno));
        }
        if (auto s = write_file(tmp + "/" + f.path, f.text); !s) return s;
      }
      if (::rename(tmp.c_str(), dir.c_str()) != 0)
        return make_error("rename to " + dir + ": " + std::strerror(errno));
      return {};
    }();
    if (!written) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      return written.error();
    }
    ++writes_;
  }
  auto tree = std::make_shared<const Tree>(Tree{key});
  trees_[key] = tree;
  remove_unused();
  return std::shared_ptr<const Tree>(tree);
}

}  // namespace onemcp::server
