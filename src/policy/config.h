// policy/config.h — 1mcp.config.json: parsing, defaults, and the effective policy of one call.
// Thread-safety: pure functions and value types; load/write touch only the given file.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace onemcp::policy {

struct Limits {
  uint64_t timeout_ms = 60000;
  uint64_t mem_mb = 256;
  uint64_t stdout_bytes = 1048576;
  bool operator==(const Limits&) const = default;
};

struct NetworkPolicy {
  std::vector<std::string> allowed_domains, denied_domains;  // lower-case; "*.x" = subdomains of x
  bool deny_ip_literals = true;
  bool block_private_ranges = true;
  uint64_t max_body_bytes = 5242880;
  uint32_t max_redirects = 5;
  bool operator==(const NetworkPolicy&) const = default;
};

struct FilesystemPolicy {
  std::vector<std::string> readonly{"/"};  // normalized absolute paths
  std::vector<std::string> writable{"/tmp", "/out"};
  bool operator==(const FilesystemPolicy&) const = default;
};

struct Policy {
  NetworkPolicy network;
  FilesystemPolicy filesystem;
  Limits limits;
  // Upstream MCP tools runs may call ("code mode"): "*" (every configured upstream), "server"
  // (all its tools) or "server/tool", by the names of the config's `mcps`. "server/*" is read as
  // "server". Empty: none.
  std::vector<std::string> mcps{"*"};
  bool operator==(const Policy&) const = default;
};

// Whether `policy.mcps` lets a run call `tool` of the upstream named `server` (exact names).
bool mcp_allowed(const Policy& policy, std::string_view server, std::string_view tool);

nlohmann::json to_json(const Policy&);  // camelCase, same shape as the config's "policy"

struct UpstreamConfig {
  std::string name, transport, command;  // transport: "stdio" | "http"
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string endpoint;
  std::map<std::string, std::string> headers;
  // Its tools are also 1mcp's own, named "<name>__<tool>" (gateway exposure).
  bool expose = false;
  bool operator==(const UpstreamConfig&) const = default;
};

// A host directory shown inside the sandbox (never implicit).
struct MountConfig {
  std::string host, path;
  std::string mode = "ro";  // "ro" | "rw"
  bool operator==(const MountConfig&) const = default;
};

// Retention of the capsule cache (cacheDir) and the verified capsules kept in memory.
struct CapsulesConfig {
  uint64_t max_total_bytes = 1ull << 30;        // gc trims least recently used capsules to this
  uint64_t max_age_ms = 7ull * 24 * 3600 * 1000;  // and removes capsules unused for longer
  uint64_t gc_interval_ms = 600000;             // gc runs at start, then this often
  uint64_t memory_bytes = 64u << 20;            // verified capsules kept in memory; 0: none
  bool operator==(const CapsulesConfig&) const = default;
};

// Retention of the npm and pip dependency sets in cacheDir/npm/ and cacheDir/pip/ (one budget
// for both) and of npm's and pip's download caches there. gc runs with the capsules' gc.
struct DepsConfig {
  uint64_t max_total_bytes = 4ull << 30;             // gc trims least recently used sets to this
  uint64_t max_age_ms = 30ull * 24 * 3600 * 1000;    // and removes sets unused for longer
  uint64_t download_cache_bytes = 1ull << 30;        // each download cache is wiped beyond this
  bool operator==(const DepsConfig&) const = default;
};

// The Python runtime (config "python"); read at start only.
struct PythonConfig {
  // Modules the Python zygote imports once, beside its standard set, so runs find them in
  // memory (e.g. "pandas", "matplotlib.pyplot"): each costs zygote memory and start time.
  std::vector<std::string> preload;
  bool operator==(const PythonConfig&) const = default;
};

// Code mode (config "codeMode"); read at start only.
struct CodeModeConfig {
  // What the run_js/run_py descriptions say of the upstream tools: "summary" (servers and tool
  // counts, and where to find the tools), "full" (a line per tool, up to 100) or "none".
  std::string describe = "summary";
  bool operator==(const CodeModeConfig&) const = default;
};

// Sessions by handle (config "sessions"): session_create returns a handle that run_js/run_py
// take, for a live interpreter per language and a workspace at /work; read at start only.
struct SessionsConfig {
  bool enabled = true;
  uint64_t idle_ms = 1800000;  // closed after this long without a call
  uint64_t max_per_principal = 4;
  uint64_t max_total = 32;
  uint64_t workspace_bytes = 64ull << 20;  // the workspace's quota (a tmpfs: memory)
  uint64_t workspace_inodes = 4096;
  bool operator==(const SessionsConfig&) const = default;
};

// The HTTP front door (config "server"); read at start only.
struct ServerConfig {
  std::vector<std::string> allowed_hosts;    // lower-case, "name" or "name:port"
  std::vector<std::string> allowed_origins;  // lower-case, "scheme://host[:port]"
  uint64_t run_slots = 16;
  uint64_t max_runs_per_client = 4;  // absent from the file: a quarter of run_slots, at least 1
  uint64_t max_queued_runs = 256;
  uint64_t max_queued_runs_per_client = 64;
  uint64_t max_sessions = 1024;
  uint64_t max_connections = 512;
  uint64_t max_connections_per_address = 128;
  uint64_t read_timeout_ms = 5000;
  uint64_t write_timeout_ms = 10000;
  uint64_t shutdown_grace_ms = 10000;
  bool operator==(const ServerConfig&) const = default;
};

// A static bearer token: only the SHA-256 of the token is kept (`1mcp token create`).
struct TokenConfig {
  std::string name;    // what the principal is called: "token:<name>"
  std::string sha256;  // 64 lowercase hex digits
  bool operator==(const TokenConfig&) const = default;
};

// This server as an OAuth 2.1 resource server: JWT access tokens verified with the issuer's keys.
struct OAuthConfig {
  std::string issuer;    // "iss" of accepted tokens, exactly
  std::string resource;  // this server's resource URI; "aud" must contain it
  std::vector<std::string> authorization_servers;  // advertised; empty: {issuer}
  std::string jwks_file;  // relative to the project directory; exactly one of file and URL
  std::string jwks_url;
  std::vector<std::string> required_scopes;
  uint64_t leeway_seconds = 60;  // clock skew allowed for exp, nbf and iat
  bool operator==(const OAuthConfig&) const = default;
};

struct AuthConfig {
  std::vector<TokenConfig> tokens;
  std::optional<OAuthConfig> oauth;
  bool enabled() const { return !tokens.empty() || oauth.has_value(); }
  bool operator==(const AuthConfig&) const = default;
};

struct Config {
  std::string language = "js";
  nlohmann::json npm = nlohmann::json::object();
  nlohmann::json pip = nlohmann::json::object();
  Policy policy;
  std::vector<UpstreamConfig> mcps;
  std::vector<MountConfig> mounts;
  uint64_t session_ttl_ms =
      86400000;  // a day: editor clients idle for hours and do not re-initialize
  ServerConfig server;
  std::string signing_key_path = ".1mcp/keys/";
  std::string cache_dir = ".1mcp/capsules/";
  CapsulesConfig capsules;
  DepsConfig deps;
  PythonConfig python;
  CodeModeConfig code_mode;
  SessionsConfig sessions;
  AuthConfig auth;
  bool operator==(const Config&) const = default;
};

nlohmann::json to_json(const AuthConfig&);  // the config's "auth" section
nlohmann::json to_json(const Config&);      // a config file that parses back to the same Config

// Hard server maxima; a config or a call can never go beyond these (the config schema's maxima).
inline constexpr Limits kMaxLimits{600000, 16384, 64u << 20};

// File name for the config schema next to a config (see write_config_schema); the default
// config's "$schema" refers to it.
inline constexpr std::string_view kConfigSchemaFileName = "1mcp.config.schema.json";

// Schema-validated, then semantic checks (unique mcps names, normalized paths, header values,
// policy.mcps naming configured upstreams, unique token names and digests, the auth.oauth URLs).
Result<Config> parse_config(const nlohmann::json& j);

// Reads and parses; every error starts with `path`: "1mcp.config.json: policy.limits.memMb: ...",
// "1mcp.config.json: line 3, column 7: invalid JSON: ...".
Result<Config> load_config(const std::string& path);

// The default config as pretty JSON: "$schema", the defaults above, allowedDomains and mcps empty.
std::string default_config_text();

// Creates `path` with default_config_text(); never overwrites, never creates directories.
Status write_default_config(const std::string& path);

// Writes the embedded config schema to `path`, replacing an existing file (it is generated).
Status write_config_schema(const std::string& path);

// The effective policy of one call. `partial` (the call's `policy` argument) is validated here
// and may only tighten `base`:
//   limits, maxBodyBytes, maxRedirects  → min(base, requested): asking for more is clamped;
//   allowedDomains → the requested list, each entry covered by a base entry, else an error;
//   deniedDomains  → union;
//   denyIpLiterals, blockPrivateRanges → can only be turned on (false over true is an error);
//   filesystem.writable → the requested list, each inside a base writable path, else an error;
//   filesystem.readonly → the requested list, each inside a base readonly or writable path;
//   mcps           → the intersection: what both lists allow (a requested entry the server does
//                    not allow is dropped; "*" asks for no more than the server's list).
Result<Policy> tighten(const Policy& base, const nlohmann::json& partial);

// Whether domain pattern `pattern` ("example.com" or "*.example.com") matches host `host`
// (case-insensitive; "*.example.com" matches subdomains on a label boundary, not the apex).
bool domain_matches(std::string_view pattern, std::string_view host);

// Whether every host matched by `inner` is matched by `outer` (both domain patterns).
bool domain_covers(std::string_view outer, std::string_view inner);

// Whether `path` is `dir` or lies inside it (both normalized absolute paths).
bool path_within(std::string_view path, std::string_view dir);

}  // namespace onemcp::policy
