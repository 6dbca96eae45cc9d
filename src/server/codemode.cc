// server/codemode.cc — see codemode.h.
#include "server/codemode.h"

#include <algorithm>
#include <set>

namespace onemcp::server {

using nlohmann::json;

namespace {

// Reserved in JS (strict mode, incl. future reserved and literals) or Python (keywords and soft
// keywords would still work, but are avoided for clarity), plus names the runtimes use.
const std::set<std::string_view> kReserved = {
    "await", "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete",
    "do", "else", "enum", "export", "extends", "false", "finally", "for", "function", "if",
    "implements", "import", "in", "instanceof", "interface", "let", "new", "null", "package",
    "private", "protected", "public", "return", "static", "super", "switch", "this", "throw",
    "true", "try", "typeof", "var", "void", "while", "with", "yield", "arguments", "eval",
    "undefined", "NaN", "Infinity", "and", "as", "assert", "async", "def", "del", "elif", "except",
    "from", "global", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "None", "True",
    "False", "then", "constructor", "prototype", "__proto__", "toString", "valueOf",
    "hasOwnProperty", "list"};

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_js_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return ident_char(c) || c == '$'; });
}

// Assigns identifiers to `names` (in any order) as code_mode_catalog describes.
std::vector<std::string> assign(const std::vector<std::string>& names) {
  std::vector<std::string> out(names.size());
  std::set<std::string> taken;
  for (size_t i = 0; i < names.size(); ++i) {
    if (to_identifier(names[i]) == names[i] && taken.insert(names[i]).second) out[i] = names[i];
  }
  std::vector<size_t> rest;
  for (size_t i = 0; i < names.size(); ++i)
    if (out[i].empty()) rest.push_back(i);
  std::sort(rest.begin(), rest.end(), [&](size_t a, size_t b) { return names[a] < names[b]; });
  for (size_t i : rest) {
    std::string base = to_identifier(names[i]), id = base;
    for (int n = 2; taken.count(id); ++n) id = base + "_" + std::to_string(n);
    taken.insert(id);
    out[i] = id;
  }
  return out;
}

std::string comment(const std::string& text, const std::string& indent) {
  std::string t = text;
  for (size_t p; (p = t.find("*/")) != std::string::npos;) t.replace(p, 2, "* /");
  std::string out = indent + "/**";
  size_t start = 0;
  bool multi = t.find('\n') != std::string::npos;
  if (!multi) return out + " " + t + " */\n";
  out += "\n";
  while (start <= t.size()) {
    size_t nl = t.find('\n', start);
    std::string line = t.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    out += indent + " *" + (line.empty() ? "" : " " + line) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out + indent + " */\n";
}

std::string ts_key(const std::string& k) { return is_js_identifier(k) ? k : json(k).dump(); }

std::string ts(const json& s, int depth);

std::string ts_object(const json& s, int depth) {
  const json* props = s.contains("properties") && s["properties"].is_object() ? &s["properties"] : nullptr;
  std::set<std::string> required;
  if (s.contains("required") && s["required"].is_array())
    for (const auto& r : s["required"])
      if (r.is_string()) required.insert(r.get<std::string>());
  std::string out = "{ ";
  if (props) {
    for (const auto& [k, v] : props->items()) {
      out += ts_key(k) + (required.count(k) ? ": " : "?: ") + ts(v, depth + 1) + "; ";
    }
  }
  const json extra = s.contains("additionalProperties") ? s["additionalProperties"] : json();
  if (extra.is_object()) {
    out += "[key: string]: " + ts(extra, depth + 1) + "; ";
  } else if (!props && !(extra.is_boolean() && !extra.get<bool>())) {
    out += "[key: string]: unknown; ";
  }
  return out == "{ " ? "{}" : out + "}";
}

std::string ts_union(const std::vector<std::string>& parts) {
  std::vector<std::string> uniq;
  for (const auto& p : parts)
    if (std::find(uniq.begin(), uniq.end(), p) == uniq.end()) uniq.push_back(p);
  if (uniq.empty()) return "unknown";
  if (uniq.size() == 1) return uniq[0];
  std::string out;
  for (const auto& p : uniq) out += (out.empty() ? "" : " | ") + ("(" + p + ")");
  return out;
}

std::string ts_for_type(const std::string& type, const json& s, int depth) {
  if (type == "string") return "string";
  if (type == "number" || type == "integer") return "number";
  if (type == "boolean") return "boolean";
  if (type == "null") return "null";
  if (type == "array") {
    if (s.contains("items") && s["items"].is_object()) return "Array<" + ts(s["items"], depth + 1) + ">";
    return "unknown[]";
  }
  if (type == "object") return ts_object(s, depth);
  return "unknown";
}

std::string ts(const json& s, int depth) {
  if (depth > 8 || !s.is_object()) return "unknown";
  if (s.contains("const")) return s["const"].dump();
  if (s.contains("enum") && s["enum"].is_array() && !s["enum"].empty()) {
    std::vector<std::string> parts;
    for (const auto& e : s["enum"]) parts.push_back(e.dump());
    return ts_union(parts);
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (s.contains(key) && s[key].is_array()) {
      std::vector<std::string> parts;
      for (const auto& sub : s[key]) parts.push_back(ts(sub, depth + 1));
      return ts_union(parts);
    }
  }
  if (s.contains("type")) {
    const json& t = s["type"];
    if (t.is_string()) return ts_for_type(t.get<std::string>(), s, depth);
    if (t.is_array()) {
      std::vector<std::string> parts;
      for (const auto& e : t)
        if (e.is_string()) parts.push_back(ts_for_type(e.get<std::string>(), s, depth));
      return ts_union(parts);
    }
  }
  if (s.contains("properties")) return ts_object(s, depth);
  return "unknown";
}

// A tool's description and input schema, as the upstream's tools/list gave them (or empty).
std::string description_of(const json& tool) {
  auto it = tool.find("description");
  return it != tool.end() && it->is_string() ? it->get<std::string>() : "";
}
json input_schema_of(const json& tool) {
  auto it = tool.find("inputSchema");
  return it != tool.end() ? *it : json::object();
}

std::string first_line(const json& tool, size_t max) {
  std::string d = description_of(tool);
  d = d.substr(0, d.find('\n'));
  if (d.size() > max) d = d.substr(0, max - 3) + "...";
  return d;
}

// The doc comment and signature of `t`, called as `callee`: "/** ... */\n<indent>callee(args:
// {...}): Promise<...>".
std::string declaration(const CodeModeTool& t, const std::string& callee,
                        const std::string& indent) {
  std::string out, doc = description_of(t.tool);
  if (t.ident != t.name) doc = "`" + t.name + "` upstream." + (doc.empty() ? "" : "\n" + doc);
  if (!doc.empty()) out += comment(doc, indent);
  const json in = input_schema_of(t.tool);
  std::string result =
      t.tool.contains("outputSchema") ? ts(t.tool["outputSchema"], 0) : "McpContent[]";
  return out + indent + callee + "(args" + (in.contains("required") ? "" : "?") + ": " + ts(in, 0) +
         "): Promise<" + result + ">";
}

// Lower-case words of letters and digits ("readFile" stays one word; "read_file" is two).
std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  std::string w;
  for (char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      w += c;
    } else if (c >= 'A' && c <= 'Z') {
      w += char(c - 'A' + 'a');
    } else if (!w.empty()) {
      out.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) out.push_back(std::move(w));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

// How well `t` of `s` matches the query words `q` (0: not at all).
int score(const CodeModeServer& s, const CodeModeTool& t, const std::vector<std::string>& q) {
  const std::string name = lower(t.name) + " " + lower(t.ident);
  const std::vector<std::string> name_words = words(t.name);
  const std::string server = lower(s.name), desc = lower(description_of(t.tool));
  std::string props;
  const json in = input_schema_of(t.tool);
  if (in.is_object() && in.contains("properties") && in["properties"].is_object())
    for (const auto& [k, v] : in["properties"].items()) props += lower(k) + " ";
  int total = 0;
  for (const auto& w : q) {
    int best = 0;
    if (std::find(name_words.begin(), name_words.end(), w) != name_words.end())
      best = 8;
    else if (name.find(w) != std::string::npos)
      best = 5;
    int more = (server.find(w) != std::string::npos ? 2 : 0) +
               (desc.find(w) != std::string::npos ? 2 : 0) +
               (props.find(w) != std::string::npos ? 1 : 0);
    total += best + more;
  }
  return total;
}

}  // namespace

std::vector<GatewayTool> gateway_tools(const UpstreamTools& upstreams) {
  constexpr size_t kMax = 64;
  auto valid = [](char c) { return ident_char(c) || c == '-'; };
  std::vector<GatewayTool> out;
  std::vector<bool> exact;
  for (const auto& [server, tools] : upstreams) {
    std::vector<const json*> sorted;
    for (const auto& t : tools)
      if (t.is_object() && t.contains("name") && t["name"].is_string()) sorted.push_back(&t);
    std::sort(sorted.begin(), sorted.end(), [](const json* a, const json* b) {
      return (*a)["name"].get_ref<const std::string&>() <
             (*b)["name"].get_ref<const std::string&>();
    });
    for (const json* t : sorted) {
      const std::string tool = (*t)["name"], raw = server + "__" + tool;
      std::string name = raw;
      for (char& c : name)
        if (!valid(c)) c = '_';
      if (name.size() > kMax) name.resize(kMax);
      exact.push_back(name == raw);
      out.push_back({name, server, tool, *t});
    }
  }
  std::set<std::string> taken;
  for (size_t i = 0; i < out.size(); ++i)
    if (exact[i] && !taken.insert(out[i].name).second) exact[i] = false;
  for (size_t i = 0; i < out.size(); ++i) {
    if (exact[i]) continue;
    const std::string base = out[i].name;
    for (int n = 2; taken.count(out[i].name); ++n) {
      const std::string suffix = "_" + std::to_string(n);
      out[i].name = base.substr(0, std::min(base.size(), kMax - suffix.size())) + suffix;
    }
    taken.insert(out[i].name);
  }
  for (auto& g : out) g.entry["name"] = g.name;
  return out;
}

std::optional<SearchDetail> search_detail(std::string_view name) {
  if (name == "names") return SearchDetail::names;
  if (name == "descriptions") return SearchDetail::descriptions;
  if (name == "signatures") return SearchDetail::signatures;
  return std::nullopt;
}

json search_catalog(const std::vector<CodeModeServer>& catalog, std::string_view query,
                    SearchDetail detail, size_t limit) {
  std::vector<std::string> q;
  for (auto& w : words(query)) {
    if (w.size() > 3 && w.back() == 's') w.pop_back();  // "invoices" finds "invoice"
    if (std::find(q.begin(), q.end(), w) == q.end()) q.push_back(std::move(w));
  }
  struct Hit {
    int score;
    const CodeModeServer* s;
    const CodeModeTool* t;
  };
  std::vector<Hit> hits;
  for (const auto& s : catalog) {
    for (const auto& t : s.tools) {
      int sc = q.empty() ? 0 : score(s, t, q);
      if (q.empty() || sc > 0) hits.push_back({sc, &s, &t});
    }
  }
  // Best first; ties in identifier order, so an answer never depends on the listing order.
  std::stable_sort(hits.begin(), hits.end(),
                   [](const Hit& a, const Hit& b) { return a.score > b.score; });
  json matches = json::array();
  for (size_t i = 0; i < hits.size() && i < limit; ++i) {
    const auto& [sc, s, t] = hits[i];
    json m = {{"server", s->ident}, {"tool", t->ident}, {"name", s->name + "/" + t->name}};
    if (detail != SearchDetail::names) m["description"] = description_of(t->tool);
    if (detail == SearchDetail::signatures) {
      m["signature"] = declaration(*t, "mcp." + s->ident + "." + t->ident, "");
      m["inputSchema"] = input_schema_of(t->tool);
      if (t->tool.contains("outputSchema")) m["outputSchema"] = t->tool["outputSchema"];
    }
    matches.push_back(std::move(m));
  }
  return json{{"total", hits.size()}, {"matches", std::move(matches)}};
}

std::string search_text(const json& found, SearchDetail detail) {
  std::string out;
  for (const auto& m : found["matches"]) {
    const std::string call =
        "mcp." + m["server"].get<std::string>() + "." + m["tool"].get<std::string>();
    if (detail == SearchDetail::names) {
      out += call + "\n";
    } else if (detail == SearchDetail::descriptions) {
      std::string d = m["description"].get<std::string>();
      out += "- " + call + (d.empty() ? "" : ": " + d) + "\n";
    } else {
      out += m["signature"].get<std::string>() + "\n\n";
    }
  }
  const size_t total = found["total"], shown = found["matches"].size();
  if (total == 0) return "No upstream tool matches.\n";
  return out + std::to_string(shown) + " of " + std::to_string(total) + " matching tool" +
         (total == 1 ? "" : "s") + " shown.\n";
}

std::string to_identifier(std::string_view name) {
  std::string out;
  for (char c : name) out += ident_char(c) ? c : '_';
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(0, "_");
  if (kReserved.count(out)) out += "_";
  return out;
}

std::vector<CodeModeServer> code_mode_catalog(const UpstreamTools& upstreams) {
  std::vector<std::string> server_names;
  for (const auto& [name, tools] : upstreams) server_names.push_back(name);
  auto server_ids = assign(server_names);
  std::vector<CodeModeServer> out;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    CodeModeServer s{server_ids[i], upstreams[i].first, {}};
    std::vector<const json*> tools;
    std::vector<std::string> names;
    for (const auto& t : upstreams[i].second) {
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string()) continue;
      tools.push_back(&t);
      names.push_back(t["name"].get<std::string>());
    }
    auto ids = assign(names);
    for (size_t k = 0; k < tools.size(); ++k) s.tools.push_back({ids[k], names[k], *tools[k]});
    std::sort(s.tools.begin(), s.tools.end(), [](auto& a, auto& b) { return a.ident < b.ident; });
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.ident < b.ident; });
  return out;
}

const CodeModeServer* find_server(const std::vector<CodeModeServer>& catalog, std::string_view ident) {
  for (const auto& s : catalog)
    if (s.ident == ident) return &s;
  for (const auto& s : catalog)
    if (s.name == ident) return &s;
  return nullptr;
}

const CodeModeTool* find_tool(const CodeModeServer& server, std::string_view ident) {
  for (const auto& t : server.tools)
    if (t.ident == ident) return &t;
  for (const auto& t : server.tools)
    if (t.name == ident) return &t;
  return nullptr;
}

std::string typescript_type(const json& schema) { return ts(schema, 0); }

std::string tool_declaration(const CodeModeTool& t, const std::string& callee) {
  return declaration(t, callee, "");
}

const char* const kMcpContentType =
    "type McpContent =\n"
    "  | { type: \"text\"; text: string }\n"
    "  | { type: \"image\"; data: string; mimeType: string }\n"
    "  | { type: \"audio\"; data: string; mimeType: string }\n"
    "  | { type: \"resource_link\"; uri: string; name: string; mimeType?: string }\n"
    "  | { type: \"resource\"; resource: { uri: string; mimeType?: string; text?: string; blob?: "
    "string } };\n";

std::string typescript_declarations(const std::vector<CodeModeServer>& catalog) {
  std::string out =
      "// Upstream MCP tools callable from run_js: `const r = await mcp.<server>.<tool>(args)`.\n"
      "// A tool's result is its structuredContent when it has one, else its content blocks;\n"
      "// a tool error rejects with an Error named \"McpError\" (isError: true).\n"
      "// Generated by 1mcp from the upstream servers' tool schemas.\n\n" +
      std::string(kMcpContentType) +
      "\ninterface McpError extends Error {\n  name: \"McpError\";\n  isError: boolean;\n}\n\n"
      "declare const mcp: {\n";
  for (const auto& s : catalog) {
    out += "  readonly " + s.ident + ": {\n";
    for (const auto& t : s.tools) out += declaration(t, t.ident, "    ") + ";\n";
    out += "  };\n";
  }
  return out + "  /** The tools this run may call: server identifier -> tool identifiers. */\n"
               "  $list(): Promise<Record<string, string[]>>;\n};\n";
}

std::string code_mode_summary(const std::vector<CodeModeServer>& catalog, bool python, size_t max_tools) {
  std::string out;
  size_t shown = 0, total = 0;
  for (const auto& s : catalog) {
    for (const auto& t : s.tools) {
      ++total;
      if (shown >= max_tools) continue;
      ++shown;
      const json in = input_schema_of(t.tool);
      std::string sig = python ? s.ident + "." + t.ident + "(**" + ts(in, 0) + ")"
                               : "mcp." + s.ident + "." + t.ident + "(" + ts(in, 0) + ")";
      std::string d = first_line(t.tool, 160);
      out += "- " + sig + (d.empty() ? "" : ": " + d) + "\n";
    }
  }
  if (total > shown) {
    out += "- ... and " + std::to_string(total - shown) +
           " more (find them with search_tools; all: GET /mcps/types.d.ts)\n";
  }
  return out;
}

std::string code_mode_counts(const std::vector<CodeModeServer>& catalog) {
  std::string out =
      std::to_string(catalog.size()) + (catalog.size() == 1 ? " server: " : " servers: ");
  for (size_t i = 0; i < catalog.size(); ++i) {
    const size_t n = catalog[i].tools.size();
    out += (i ? ", " : "") + catalog[i].ident + " (" + std::to_string(n) +
           (n == 1 ? " tool)" : " tools)");
  }
  return out + ".";
}

}  // namespace onemcp::server
