#include "policy/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include "base/unique_fd.h"
#include "policy/egress.h"
#include "policy/schema.h"
#include "policy/schemas.h"

namespace onemcp::policy {

using nlohmann::json;

namespace {

constexpr size_t kMaxConfigBytes = 16u << 20;

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "; " : "") + parts[i];
  return out;
}

std::string json_string(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Only called on schema-validated values: integral, ≥ 0 and below 2^64.
uint64_t u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) return static_cast<uint64_t>(std::max<int64_t>(0, v.get<int64_t>()));
  return static_cast<uint64_t>(std::max(0.0, v.get<double>()));
}

std::vector<std::string> strings(const json& v) { return v.get<std::vector<std::string>>(); }

// Prefix checks on paths are only sound on normalized paths: "/tmp/../etc" must never count as
// inside "/tmp".
bool normalized_absolute(std::string_view p) {
  if (p == "/") return true;
  if (p.empty() || p.front() != '/' || p.back() == '/' || p.find('\0') != std::string_view::npos) {
    return false;
  }
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    start = end + 1;
  }
  return true;
}

void check_paths(const json& list, const std::string& path, std::vector<std::string>& errors) {
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& p = list[i].get_ref<const std::string&>();
    if (!normalized_absolute(p)) {
      errors.push_back(join_path(path, i) +
                       ": must be a normalized absolute path (no \".\", \"..\" or empty segments, "
                       "no trailing \"/\") (got " +
                       json_string(p) + ")");
    }
  }
}

// The server part of a policy.mcps entry ("*", "server" or "server/tool").
std::string_view mcp_server_of(std::string_view pattern) {
  return pattern.substr(0, pattern.find('/'));
}

// What both entries allow, if anything (entries as read_policy leaves them).
std::optional<std::string> mcp_meet(const std::string& a, const std::string& b) {
  if (a == "*") return b;
  if (b == "*") return a;
  if (mcp_server_of(a) != mcp_server_of(b)) return std::nullopt;
  if (a.find('/') == std::string::npos) return b;
  if (b.find('/') == std::string::npos || a == b) return a;
  return std::nullopt;
}

std::vector<std::string> lower_all(const json& list) {
  std::vector<std::string> out;
  for (const auto& d : list) out.push_back(lower(d.get<std::string>()));
  return out;
}

// Reads the fields present in a schema-validated policy object over `out`, checking what the
// schema cannot express.
void read_policy(const json& p, const std::string& path, Policy& out,
                 std::vector<std::string>& errors) {
  if (auto n = p.find("network"); n != p.end()) {
    auto& net = out.network;
    if (n->contains("allowedDomains")) net.allowed_domains = lower_all((*n)["allowedDomains"]);
    if (n->contains("deniedDomains")) net.denied_domains = lower_all((*n)["deniedDomains"]);
    if (n->contains("denyIpLiterals")) net.deny_ip_literals = (*n)["denyIpLiterals"].get<bool>();
    if (n->contains("blockPrivateRanges")) {
      net.block_private_ranges = (*n)["blockPrivateRanges"].get<bool>();
    }
    if (n->contains("maxBodyBytes")) net.max_body_bytes = u64((*n)["maxBodyBytes"]);
    if (n->contains("maxRedirects")) {
      net.max_redirects =
          static_cast<uint32_t>(std::min<uint64_t>(u64((*n)["maxRedirects"]), UINT32_MAX));
    }
  }
  if (auto f = p.find("filesystem"); f != p.end()) {
    for (const char* k : {"readonly", "writable"}) {
      if (!f->contains(k)) continue;
      check_paths((*f)[k], path + ".filesystem." + k, errors);
      (k == std::string("readonly") ? out.filesystem.readonly : out.filesystem.writable) =
          strings((*f)[k]);
    }
  }
  if (auto l = p.find("limits"); l != p.end()) {
    if (l->contains("timeoutMs")) out.limits.timeout_ms = u64((*l)["timeoutMs"]);
    if (l->contains("memMb")) out.limits.mem_mb = u64((*l)["memMb"]);
    if (l->contains("stdoutBytes")) out.limits.stdout_bytes = u64((*l)["stdoutBytes"]);
  }
  if (auto m = p.find("mcps"); m != p.end()) {
    out.mcps.clear();
    for (const auto& e : *m) {
      std::string pattern = e.get<std::string>();
      if (pattern.size() > 2 && pattern.ends_with("/*")) pattern.resize(pattern.size() - 2);
      if (std::find(out.mcps.begin(), out.mcps.end(), pattern) == out.mcps.end()) {
        out.mcps.push_back(std::move(pattern));
      }
    }
  }
}

UpstreamConfig read_upstream(const json& m, const std::string& path,
                             std::vector<std::string>& errors) {
  UpstreamConfig u;
  u.name = m.at("name").get<std::string>();
  u.transport = m.at("transport").get<std::string>();
  u.command = m.value("command", "");
  if (m.contains("args")) u.args = strings(m["args"]);
  if (m.contains("env")) u.env = m["env"].get<std::map<std::string, std::string>>();
  u.endpoint = m.value("endpoint", "");
  u.expose = m.value("expose", false);
  if (m.contains("headers")) u.headers = m["headers"].get<std::map<std::string, std::string>>();
  for (const auto& [k, v] : u.headers) {
    if (v.find_first_of("\r\n", 0) != std::string::npos || v.find('\0') != std::string::npos) {
      errors.push_back(join_path(join_path(path, "headers"), k) + ": must not contain line breaks");
    }
  }
  return u;
}

// An http(s) URL that parse_url accepts, without a fragment; with `secure`, https or else http to
// a loopback host only (what a token issuer or a key set may be fetched from).
void check_url(const std::string& url, const std::string& path, bool secure,
               std::vector<std::string>& errors) {
  auto u = parse_url(url);
  if (!u || url.find('#') != std::string::npos) {
    errors.push_back(path + ": must be an absolute http(s) URL without a fragment (got " +
                     json_string(url) + ")");
    return;
  }
  const bool loopback =
      u->host == "localhost" || (u->host_is_ip && (u->ip.rfind("127.", 0) == 0 || u->ip == "::1"));
  if (secure && u->scheme != "https" && !loopback) {
    errors.push_back(path + ": must be an https URL (http only for a loopback host) (got " +
                     json_string(url) + ")");
  }
}

AuthConfig read_auth(const json& a, std::vector<std::string>& errors) {
  AuthConfig out;
  if (a.contains("tokens")) {
    std::map<std::string, size_t> names, digests;
    const auto& tokens = a["tokens"];
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string path = join_path("auth.tokens", i);
      out.tokens.push_back(
          {tokens[i]["name"].get<std::string>(), tokens[i]["sha256"].get<std::string>()});
      // Names become principals in logs, where "ci" and "CI" would be easy to confuse.
      auto [n, fresh_name] = names.emplace(lower(out.tokens.back().name), i);
      if (!fresh_name) {
        errors.push_back(path + ".name: duplicate name " + json_string(out.tokens.back().name) +
                         " (already used by auth.tokens[" + std::to_string(n->second) + "])");
      }
      auto [d, fresh_digest] = digests.emplace(out.tokens.back().sha256, i);
      if (!fresh_digest) {
        errors.push_back(path + ".sha256: the same token as auth.tokens[" +
                         std::to_string(d->second) + "]");
      }
    }
  }
  if (a.contains("oauth")) {
    const json& o = a["oauth"];
    OAuthConfig oc;
    oc.issuer = o["issuer"].get<std::string>();
    oc.resource = o["resource"].get<std::string>();
    check_url(oc.issuer, "auth.oauth.issuer", true, errors);
    check_url(oc.resource, "auth.oauth.resource", false, errors);
    if (o.contains("authorizationServers")) {
      oc.authorization_servers = strings(o["authorizationServers"]);
      for (size_t i = 0; i < oc.authorization_servers.size(); ++i) {
        check_url(oc.authorization_servers[i], join_path("auth.oauth.authorizationServers", i),
                  true, errors);
      }
    }
    oc.jwks_file = o.value("jwksFile", "");
    oc.jwks_url = o.value("jwksUrl", "");
    if (oc.jwks_file.empty() == oc.jwks_url.empty()) {
      errors.push_back("auth.oauth: exactly one of jwksFile and jwksUrl is required");
    }
    if (!oc.jwks_url.empty()) check_url(oc.jwks_url, "auth.oauth.jwksUrl", true, errors);
    if (o.contains("requiredScopes")) oc.required_scopes = strings(o["requiredScopes"]);
    if (o.contains("leewaySeconds")) oc.leeway_seconds = u64(o["leewaySeconds"]);
    out.oauth = std::move(oc);
  }
  return out;
}

Config read_config(const json& j, std::vector<std::string>& errors) {
  Config c;
  c.language = j.value("language", c.language);
  if (j.contains("npm")) c.npm = j["npm"];
  if (j.contains("pip")) c.pip = j["pip"];
  if (j.contains("policy")) read_policy(j["policy"], "policy", c.policy, errors);
  if (j.contains("mcps")) {
    // Names are used in URLs and tool names, where "fs" and "FS" would be easy to confuse.
    std::map<std::string, size_t> seen;
    const auto& mcps = j["mcps"];
    for (size_t i = 0; i < mcps.size(); ++i) {
      std::string path = join_path("mcps", i);
      c.mcps.push_back(read_upstream(mcps[i], path, errors));
      auto [it, fresh] = seen.emplace(lower(c.mcps.back().name), i);
      if (!fresh) {
        errors.push_back(path + ".name: duplicate name " + json_string(c.mcps.back().name) +
                         " (already used by mcps[" + std::to_string(it->second) + "])");
      }
    }
  }
  if (j.contains("policy") && j["policy"].contains("mcps")) {
    const auto& patterns = j["policy"]["mcps"];
    for (size_t i = 0; i < patterns.size(); ++i) {
      std::string_view server = mcp_server_of(patterns[i].get_ref<const std::string&>());
      bool known =
          server == "*" || std::any_of(c.mcps.begin(), c.mcps.end(),
                                       [&](const UpstreamConfig& u) { return u.name == server; });
      if (!known) {
        errors.push_back(join_path("policy.mcps", i) + ": no upstream named " +
                         json_string(server) + " in mcps");
      }
    }
  }
  if (j.contains("mounts")) {
    const auto& mounts = j["mounts"];
    std::set<std::string> seen;
    for (size_t i = 0; i < mounts.size(); ++i) {
      std::string path = join_path("mounts", i);
      MountConfig m{mounts[i]["host"], mounts[i]["path"], mounts[i].value("mode", "ro")};
      for (auto [field, value] : {std::pair{"host", &m.host}, std::pair{"path", &m.path}}) {
        if (!normalized_absolute(*value) || *value == "/") {
          errors.push_back(path + "." + field + ": must be a normalized absolute path other than \"/\" (got " +
                           json_string(*value) + ")");
        }
      }
      for (std::string reserved : {"/proc", "/dev", "/usr", "/lib", "/lib64", "/etc", "/mcps"}) {
        if (path_within(m.path, reserved) || path_within(reserved, m.path)) {
          errors.push_back(path + ".path: " + reserved + " is reserved for the sandbox itself");
        }
      }
      for (const auto& w : c.policy.filesystem.writable) {
        if (path_within(m.path, w) || path_within(w, m.path)) {
          errors.push_back(path + ".path: overlaps the writable path " + w);
        }
      }
      if (!seen.insert(m.path).second) errors.push_back(path + ".path: mounted twice");
      c.mounts.push_back(std::move(m));
    }
  }
  if (j.contains("sessionTtlMs")) c.session_ttl_ms = u64(j["sessionTtlMs"]);
  if (j.contains("server")) {
    const json& k = j["server"];
    if (k.contains("allowedHosts")) c.server.allowed_hosts = strings(k["allowedHosts"]);
    if (k.contains("allowedOrigins")) c.server.allowed_origins = strings(k["allowedOrigins"]);
    for (auto* list : {&c.server.allowed_hosts, &c.server.allowed_origins}) {
      for (auto& v : *list) v = lower(v);
    }
    for (auto [name, field] :
         {std::pair{"runSlots", &c.server.run_slots},
          std::pair{"maxQueuedRuns", &c.server.max_queued_runs},
          std::pair{"maxQueuedRunsPerClient", &c.server.max_queued_runs_per_client},
          std::pair{"maxSessions", &c.server.max_sessions},
          std::pair{"maxConnections", &c.server.max_connections},
          std::pair{"maxConnectionsPerAddress", &c.server.max_connections_per_address},
          std::pair{"readTimeoutMs", &c.server.read_timeout_ms},
          std::pair{"writeTimeoutMs", &c.server.write_timeout_ms},
          std::pair{"shutdownGraceMs", &c.server.shutdown_grace_ms}}) {
      if (k.contains(name)) *field = u64(k[name]);
    }
    c.server.max_runs_per_client = k.contains("maxRunsPerClient")
                                       ? u64(k["maxRunsPerClient"])
                                       : std::max<uint64_t>(1, c.server.run_slots / 4);
    if (c.server.max_runs_per_client > c.server.run_slots) {
      errors.push_back("server.maxRunsPerClient: " + std::to_string(c.server.max_runs_per_client) +
                       " is more than server.runSlots (" + std::to_string(c.server.run_slots) +
                       ")");
    }
  }
  c.signing_key_path = j.value("signingKeyPath", c.signing_key_path);
  c.cache_dir = j.value("cacheDir", c.cache_dir);
  if (j.contains("capsules")) {
    const json& k = j["capsules"];
    for (auto [name, field] : {std::pair{"maxTotalBytes", &c.capsules.max_total_bytes},
                               std::pair{"maxAgeMs", &c.capsules.max_age_ms},
                               std::pair{"gcIntervalMs", &c.capsules.gc_interval_ms},
                               std::pair{"memoryBytes", &c.capsules.memory_bytes}}) {
      if (k.contains(name)) *field = u64(k[name]);
    }
  }
  if (j.contains("deps")) {
    const json& k = j["deps"];
    for (auto [name, field] : {std::pair{"maxTotalBytes", &c.deps.max_total_bytes},
                               std::pair{"maxAgeMs", &c.deps.max_age_ms},
                               std::pair{"downloadCacheBytes", &c.deps.download_cache_bytes}}) {
      if (k.contains(name)) *field = u64(k[name]);
    }
  }
  if (j.contains("codeMode"))
    c.code_mode.describe = j["codeMode"].value("describe", c.code_mode.describe);
  if (j.contains("python")) {
    c.python.preload = j["python"].value("preload", std::vector<std::string>{});
  }
  if (j.contains("sessions")) {
    const json& k = j["sessions"];
    c.sessions.enabled = k.value("enabled", c.sessions.enabled);
    for (auto [name, field] : {std::pair{"idleMs", &c.sessions.idle_ms},
                               std::pair{"maxPerPrincipal", &c.sessions.max_per_principal},
                               std::pair{"maxTotal", &c.sessions.max_total},
                               std::pair{"workspaceBytes", &c.sessions.workspace_bytes},
                               std::pair{"workspaceInodes", &c.sessions.workspace_inodes}}) {
      if (k.contains(name)) *field = u64(k[name]);
    }
    if (c.sessions.max_per_principal > c.sessions.max_total) {
      errors.push_back("sessions.maxPerPrincipal: " + std::to_string(c.sessions.max_per_principal) +
                       " is more than sessions.maxTotal (" + std::to_string(c.sessions.max_total) +
                       ")");
    }
  }
  if (j.contains("auth")) c.auth = read_auth(j["auth"], errors);
  return c;
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return make_error(path + ": cannot read: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return make_error(path + ": cannot read: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return make_error(path + ": cannot read: not a regular file");
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      return make_error(path + ": too large (more than " + std::to_string(kMaxConfigBytes) +
                        " bytes)");
    }
  }
  return text;
}

std::string line_column(const std::string& text, size_t pos) {
  pos = std::min(pos, text.size());
  size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + pos, '\n'));
  size_t nl = text.rfind('\n', pos == 0 ? 0 : pos - 1);
  size_t column = (nl == std::string::npos || pos == 0) ? pos + 1 : pos - nl;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// nlohmann's message without its "[json.exception...] parse error at line L, column C: " prefix.
std::string parse_detail(const std::string& what) {
  size_t at = what.find("column ");
  if (at != std::string::npos) at = what.find(": ", at);
  if (at == std::string::npos) {
    at = what.find("] ");
    return at == std::string::npos ? what : what.substr(at + 2);
  }
  return what.substr(at + 2);
}

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

std::string open_error(const std::string& path, int err) {
  if (err == ENOENT) return path + ": cannot create: the parent directory does not exist";
  return path + ": cannot create: " + std::strerror(err);
}

}  // namespace

json to_json(const Policy& p) {
  return json{
      {"network",
       {{"allowedDomains", p.network.allowed_domains},
        {"deniedDomains", p.network.denied_domains},
        {"denyIpLiterals", p.network.deny_ip_literals},
        {"blockPrivateRanges", p.network.block_private_ranges},
        {"maxBodyBytes", p.network.max_body_bytes},
        {"maxRedirects", p.network.max_redirects}}},
      {"filesystem", {{"readonly", p.filesystem.readonly}, {"writable", p.filesystem.writable}}},
      {"limits",
       {{"timeoutMs", p.limits.timeout_ms},
        {"memMb", p.limits.mem_mb},
        {"stdoutBytes", p.limits.stdout_bytes}}},
      {"mcps", p.mcps}};
}

json to_json(const AuthConfig& a) {
  json tokens = json::array();
  for (const auto& t : a.tokens) tokens.push_back({{"name", t.name}, {"sha256", t.sha256}});
  json out = {{"tokens", std::move(tokens)}};
  if (a.oauth) {
    const OAuthConfig& o = *a.oauth;
    json oauth = {{"issuer", o.issuer}, {"resource", o.resource}};
    if (!o.authorization_servers.empty()) oauth["authorizationServers"] = o.authorization_servers;
    if (!o.jwks_file.empty()) oauth["jwksFile"] = o.jwks_file;
    if (!o.jwks_url.empty()) oauth["jwksUrl"] = o.jwks_url;
    oauth["requiredScopes"] = o.required_scopes;
    oauth["leewaySeconds"] = o.leeway_seconds;
    out["oauth"] = std::move(oauth);
  }
  return out;
}

json to_json(const Config& c) {
  json mcps = json::array();
  for (const auto& u : c.mcps) {
    json m = {{"name", u.name}, {"transport", u.transport}};
    if (u.transport == "stdio") {
      m["command"] = u.command;
      if (!u.args.empty()) m["args"] = u.args;
      if (!u.env.empty()) m["env"] = u.env;
    } else {
      m["endpoint"] = u.endpoint;
      if (!u.headers.empty()) m["headers"] = u.headers;
    }
    if (u.expose) m["expose"] = true;
    mcps.push_back(std::move(m));
  }
  json mounts = json::array();
  for (const auto& m : c.mounts) mounts.push_back({{"host", m.host}, {"path", m.path}, {"mode", m.mode}});
  return json{{"language", c.language},
              {"npm", c.npm},
              {"pip", c.pip},
              {"policy", to_json(c.policy)},
              {"mcps", mcps},
              {"mounts", mounts},
              {"sessionTtlMs", c.session_ttl_ms},
              {"server",
               {{"allowedHosts", c.server.allowed_hosts},
                {"allowedOrigins", c.server.allowed_origins},
                {"runSlots", c.server.run_slots},
                {"maxRunsPerClient", c.server.max_runs_per_client},
                {"maxQueuedRuns", c.server.max_queued_runs},
                {"maxQueuedRunsPerClient", c.server.max_queued_runs_per_client},
                {"maxSessions", c.server.max_sessions},
                {"maxConnections", c.server.max_connections},
                {"maxConnectionsPerAddress", c.server.max_connections_per_address},
                {"readTimeoutMs", c.server.read_timeout_ms},
                {"writeTimeoutMs", c.server.write_timeout_ms},
                {"shutdownGraceMs", c.server.shutdown_grace_ms}}},
              {"signingKeyPath", c.signing_key_path},
              {"cacheDir", c.cache_dir},
              {"capsules",
               {{"maxTotalBytes", c.capsules.max_total_bytes},
                {"maxAgeMs", c.capsules.max_age_ms},
                {"gcIntervalMs", c.capsules.gc_interval_ms},
                {"memoryBytes", c.capsules.memory_bytes}}},
              {"deps",
               {{"maxTotalBytes", c.deps.max_total_bytes},
                {"maxAgeMs", c.deps.max_age_ms},
                {"downloadCacheBytes", c.deps.download_cache_bytes}}},
              {"python", {{"preload", c.python.preload}}},
              {"codeMode", {{"describe", c.code_mode.describe}}},
              {"sessions",
               {{"enabled", c.sessions.enabled},
                {"idleMs", c.sessions.idle_ms},
                {"maxPerPrincipal", c.sessions.max_per_principal},
                {"maxTotal", c.sessions.max_total},
                {"workspaceBytes", c.sessions.workspace_bytes},
                {"workspaceInodes", c.sessions.workspace_inodes}}},
              {"auth", to_json(c.auth)}};
}

Result<Config> parse_config(const json& j) {
  try {
    if (auto s = validate(config_schema(), j); !s) return s.error();
    std::vector<std::string> errors;
    Config c = read_config(j, errors);
    if (!errors.empty()) return make_error(join(errors));
    return c;
  } catch (const std::exception& e) {  // a validated document should never get here
    return make_error(std::string("invalid config: ") + e.what());
  }
}

Result<Config> load_config(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  json j;
  try {
    j = json::parse(*text);
  } catch (const json::parse_error& e) {
    return make_error(path + ": " + line_column(*text, e.byte == 0 ? 0 : e.byte - 1) +
                      ": invalid JSON (" + parse_detail(e.what()) + ")");
  } catch (const json::exception& e) {
    // Numbers beyond a double ("1e400"): nlohmann names the literal but not its position.
    std::string what = e.what();
    std::string where;
    if (size_t q = what.find('\''); q != std::string::npos) {
      size_t q2 = what.find('\'', q + 1);
      size_t pos =
          q2 == std::string::npos ? std::string::npos : text->find(what.substr(q + 1, q2 - q - 1));
      if (pos != std::string::npos) where = line_column(*text, pos) + ": ";
    }
    return make_error(path + ": " + where + "invalid JSON (" + parse_detail(what) + ")");
  }
  auto c = parse_config(j);
  if (!c) return make_error(path + ": " + c.error().message);
  return c;
}

std::string default_config_text() {
  return R"({
  "$schema": "./1mcp.config.schema.json",
  "language": "js",
  "npm": {
    "dependencies": {}
  },
  "pip": {
    "requirements": []
  },
  "policy": {
    "network": {
      "allowedDomains": [],
      "deniedDomains": [],
      "denyIpLiterals": true,
      "blockPrivateRanges": true,
      "maxBodyBytes": 5242880,
      "maxRedirects": 5
    },
    "filesystem": {
      "readonly": ["/"],
      "writable": ["/tmp", "/out"]
    },
    "limits": {
      "timeoutMs": 60000,
      "memMb": 256,
      "stdoutBytes": 1048576
    },
    "mcps": ["*"]
  },
  "mcps": [],
  "sessionTtlMs": 86400000,
  "server": {
    "allowedHosts": [],
    "allowedOrigins": [],
    "runSlots": 16,
    "maxRunsPerClient": 4,
    "maxQueuedRuns": 256,
    "maxQueuedRunsPerClient": 64,
    "maxSessions": 1024,
    "maxConnections": 512,
    "maxConnectionsPerAddress": 128,
    "readTimeoutMs": 5000,
    "writeTimeoutMs": 10000,
    "shutdownGraceMs": 10000
  },
  "signingKeyPath": ".1mcp/keys/",
  "cacheDir": ".1mcp/capsules/",
  "capsules": {
    "maxTotalBytes": 1073741824,
    "maxAgeMs": 604800000,
    "gcIntervalMs": 600000,
    "memoryBytes": 67108864
  },
  "deps": {
    "maxTotalBytes": 4294967296,
    "maxAgeMs": 2592000000,
    "downloadCacheBytes": 1073741824
  },
  "python": {
    "preload": []
  },
  "codeMode": {
    "describe": "summary"
  },
  "sessions": {
    "enabled": true,
    "idleMs": 1800000,
    "maxPerPrincipal": 4,
    "maxTotal": 32,
    "workspaceBytes": 67108864,
    "workspaceInodes": 4096
  },
  "auth": {
    "tokens": []
  }
}
)";
}

Status write_default_config(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    if (errno == EEXIST) return make_error(path + ": already exists; not overwriting it");
    return make_error(open_error(path, errno));
  }
  if (auto s = write_all(fd.get(), default_config_text()); !s) {
    ::unlink(path.c_str());  // never leave a half-written config behind
    return make_error(path + ": cannot write: " + s.error().message);
  }
  return {};
}

Status write_config_schema(const std::string& path) {
  auto text = schema_text("config.schema.json");
  if (!text) return make_error(path + ": no embedded config schema");
  // Written aside and renamed, so an editor never sees a partial schema.
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return make_error(open_error(path, errno));
  if (auto s = write_all(fd.get(), *text); !s) {
    ::unlink(tmp.c_str());
    return make_error(path + ": cannot write: " + s.error().message);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return make_error(path + ": cannot write: " + std::strerror(err));
  }
  return {};
}

// ---- tighten -------------------------------------------------------------------------------

bool domain_matches(std::string_view pattern, std::string_view host) {
  std::string p = lower(std::string(pattern)), h = lower(std::string(host));
  if (p.rfind("*.", 0) != 0) return p == h;
  std::string_view suffix = std::string_view(p).substr(1);  // ".example.com"
  return h.size() > suffix.size() &&
         h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool domain_covers(std::string_view outer, std::string_view inner) {
  std::string o = lower(std::string(outer)), i = lower(std::string(inner));
  if (i.rfind("*.", 0) != 0) return domain_matches(o, i);
  // A wildcard is covered by an equal wildcard or by a wildcard of one of its parents.
  if (o.rfind("*.", 0) != 0) return false;
  return o == i || domain_matches(o, i.substr(2));
}

bool mcp_allowed(const Policy& policy, std::string_view server, std::string_view tool) {
  return std::any_of(policy.mcps.begin(), policy.mcps.end(), [&](std::string_view m) {
    if (m == "*") return true;
    size_t slash = m.find('/');
    if (slash == std::string_view::npos) return m == server;
    return m.substr(0, slash) == server && m.substr(slash + 1) == tool;
  });
}

bool path_within(std::string_view path, std::string_view dir) {
  if (dir == "/") return !path.empty() && path.front() == '/';
  return path == dir ||
         (path.size() > dir.size() && path.substr(0, dir.size()) == dir && path[dir.size()] == '/');
}

Result<Policy> tighten(const Policy& base, const json& partial) {
  try {
    if (auto s = validate(partial_policy_schema(), partial, "policy"); !s) return s.error();
    Policy req = base;
    std::vector<std::string> errors;
    read_policy(partial, "policy", req, errors);
    if (!errors.empty()) return make_error(join(errors));

    Policy out = base;
    auto widen = [&](const std::string& field, const std::string& why) {
      errors.push_back("policy." + field + ": cannot widen the server policy (" + why + ")");
    };

    const json net = partial.value("network", json::object());
    if (net.contains("allowedDomains")) {
      for (const auto& d : req.network.allowed_domains) {
        bool covered =
            std::any_of(base.network.allowed_domains.begin(), base.network.allowed_domains.end(),
                        [&](const std::string& b) { return domain_covers(b, d); });
        if (!covered) widen("network.allowedDomains", d + " is not allowed on this server");
      }
      out.network.allowed_domains = req.network.allowed_domains;
    }
    for (const auto& d : req.network.denied_domains) {
      auto& denied = out.network.denied_domains;
      if (std::find(denied.begin(), denied.end(), d) == denied.end()) denied.push_back(d);
    }
    if (base.network.deny_ip_literals && !req.network.deny_ip_literals) {
      widen("network.denyIpLiterals", "IP literals are denied on this server");
    }
    out.network.deny_ip_literals = base.network.deny_ip_literals || req.network.deny_ip_literals;
    if (base.network.block_private_ranges && !req.network.block_private_ranges) {
      widen("network.blockPrivateRanges", "private ranges are blocked on this server");
    }
    out.network.block_private_ranges =
        base.network.block_private_ranges || req.network.block_private_ranges;
    out.network.max_body_bytes = std::min(base.network.max_body_bytes, req.network.max_body_bytes);
    out.network.max_redirects = std::min(base.network.max_redirects, req.network.max_redirects);

    const json fs = partial.value("filesystem", json::object());
    auto inside_any = [](const std::string& p, const std::vector<std::string>& dirs) {
      return std::any_of(dirs.begin(), dirs.end(),
                         [&](const std::string& d) { return path_within(p, d); });
    };
    if (fs.contains("writable")) {
      for (const auto& p : req.filesystem.writable) {
        if (!inside_any(p, base.filesystem.writable)) {
          widen("filesystem.writable", p + " is not writable on this server");
        }
      }
      out.filesystem.writable = req.filesystem.writable;
    }
    if (fs.contains("readonly")) {
      for (const auto& p : req.filesystem.readonly) {
        if (!inside_any(p, base.filesystem.readonly) && !inside_any(p, base.filesystem.writable)) {
          widen("filesystem.readonly", p + " is not readable on this server");
        }
      }
      out.filesystem.readonly = req.filesystem.readonly;
    }

    // Upstream tools: what both lists allow. Entries are not checked against the server's list,
    // so a call written for several servers still runs where only some are allowed.
    if (partial.contains("mcps")) {
      out.mcps.clear();
      for (const auto& r : req.mcps) {
        for (const auto& b : base.mcps) {
          auto m = mcp_meet(b, r);
          if (m && std::find(out.mcps.begin(), out.mcps.end(), *m) == out.mcps.end()) {
            out.mcps.push_back(std::move(*m));
          }
        }
      }
    }

    // Limits: asking for more than the server allows is clamped, not refused.
    out.limits.timeout_ms = std::min(base.limits.timeout_ms, req.limits.timeout_ms);
    out.limits.mem_mb = std::min(base.limits.mem_mb, req.limits.mem_mb);
    out.limits.stdout_bytes = std::min(base.limits.stdout_bytes, req.limits.stdout_bytes);
    // A base policy built in code rather than from a config still never exceeds the maxima.
    out.limits.timeout_ms = std::min(out.limits.timeout_ms, kMaxLimits.timeout_ms);
    out.limits.mem_mb = std::min(out.limits.mem_mb, kMaxLimits.mem_mb);
    out.limits.stdout_bytes = std::min(out.limits.stdout_bytes, kMaxLimits.stdout_bytes);

    if (!errors.empty()) return make_error(join(errors));
    return out;
  } catch (const std::exception& e) {  // a validated document should never get here
    return make_error(std::string("policy: cannot be applied (") + e.what() + ")");
  }
}

}  // namespace onemcp::policy
