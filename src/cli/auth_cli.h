// cli/auth_cli.h — the `1mcp token` commands (create, list, revoke: they edit auth.tokens of the
// config file, keeping its key order), and the authentication `1mcp serve` puts in front of its
// HTTP routes (built here from the config: the only place with the real JWK Set sources).
// Thread-safety: called from main's thread only.
#pragma once

#include <memory>
#include <string>

#include "auth/jwks_cache.h"
#include "base/result.h"
#include "policy/config.h"
#include "server/auth.h"

namespace onemcp::cli {

// `1mcp token create`: prints a new token on stdout, adds its SHA-256 to auth.tokens of the
// config `config` of project `dir` under `name` (empty: the first free "token-N"). Exit code.
int token_create(const std::string& dir, const std::string& config, const std::string& name);
// `1mcp token list`: the names of auth.tokens and the start of their digests.
int token_list(const std::string& dir, const std::string& config);
// `1mcp token revoke NAME`: removes that entry.
int token_revoke(const std::string& dir, const std::string& config, const std::string& name);

struct ServeAuth {
  std::unique_ptr<auth::JwksCache> jwks;   // with auth.oauth
  std::unique_ptr<server::HttpAuth> http;  // null when authentication is off
};

// The HTTP authentication of `config` (none when it configures none). With auth.oauth, the JWK
// Set is read once now: a jwksFile that cannot be read or holds no usable key is an error; a
// jwksUrl that fails is logged and fetched again in the background.
Result<ServeAuth> setup_serve_auth(const policy::Config& config, const std::string& dir);

}  // namespace onemcp::cli
