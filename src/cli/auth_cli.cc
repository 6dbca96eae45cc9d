#include "cli/auth_cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "auth/jwks_fetch.h"
#include "auth/tokens.h"
#include "base/log.h"
#include "base/sha256.h"
#include "base/unique_fd.h"
#include "cli/config_file.h"

namespace onemcp::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

ordered_json& tokens_of(ordered_json& doc) {
  ordered_json& a = doc["auth"];  // added last when missing
  if (!a.contains("tokens")) a["tokens"] = ordered_json::array();
  return a["tokens"];
}

}  // namespace

int token_create(const std::string& dir, const std::string& config, const std::string& name_arg) {
  const std::string path = resolve(dir, config);
  auto doc = read_config_document(dir, config);
  if (!doc) {
    std::fprintf(stderr,
                 "1mcp token create: %s\n(the token is added to an existing, valid config: fix "
                 "it, or make one with `1mcp init`)\n",
                 doc.error().message.c_str());
    return 2;
  }
  ordered_json& tokens = tokens_of(*doc);
  auto taken = [&](const std::string& n) {
    for (const auto& t : tokens) {
      std::string other = t.value("name", "");
      if (other.size() == n.size() &&
          std::equal(n.begin(), n.end(), other.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        return true;
      }
    }
    return false;
  };
  std::string name = name_arg;
  if (name.empty()) {
    for (int i = 1; name.empty() || taken(name); ++i) name = "token-" + std::to_string(i);
  } else if (taken(name)) {
    std::fprintf(stderr,
                 "1mcp token create: auth.tokens of %s already has a token named \"%s\" (revoke "
                 "it first with `1mcp token revoke %s`, or choose another --name)\n",
                 path.c_str(), name.c_str(), name.c_str());
    return 2;
  }
  auto token = auth::generate_token();
  if (!token) {
    std::fprintf(stderr, "1mcp token create: %s\n", token.error().message.c_str());
    return 1;
  }
  tokens.push_back(ordered_json{{"name", name}, {"sha256", sha256_hex(*token)}});
  if (auto s = write_config_document(path, *doc); !s) {
    std::fprintf(stderr, "1mcp token create: %s\n", s.error().message.c_str());
    return 2;
  }
  std::printf("%s\n", token->c_str());
  std::fflush(stdout);
  std::fprintf(
      stderr,
      "1mcp: added token \"%s\" to auth.tokens of %s (only its SHA-256 is stored).\n"
      "Keep the token printed above: it cannot be shown again. Clients send it as\n"
      "\"Authorization: Bearer <token>\"; the web page opens as http://HOST:PORT/?token=<token>.\n"
      "A running server uses it after SIGHUP or a restart.\n",
      name.c_str(), path.c_str());
  return 0;
}

int token_list(const std::string& dir, const std::string& config) {
  const std::string path = resolve(dir, config);
  auto c = load_project_config(dir, config);
  if (!c) {
    std::fprintf(stderr, "1mcp token list: %s\n", c.error().message.c_str());
    return 2;
  }
  for (const auto& t : c->auth.tokens) {
    std::printf("%s\tsha256:%s…\n", t.name.c_str(), t.sha256.substr(0, 12).c_str());
  }
  if (c->auth.tokens.empty()) std::fprintf(stderr, "1mcp: no tokens in %s\n", path.c_str());
  return 0;
}

int token_revoke(const std::string& dir, const std::string& config, const std::string& name) {
  const std::string path = resolve(dir, config);
  auto doc = read_config_document(dir, config);
  if (!doc) {
    std::fprintf(stderr, "1mcp token revoke: %s\n", doc.error().message.c_str());
    return 2;
  }
  ordered_json& tokens = tokens_of(*doc);
  size_t before = tokens.size();
  ordered_json kept = ordered_json::array();
  for (auto& t : tokens) {
    if (t.value("name", "") != name) kept.push_back(std::move(t));
  }
  if (kept.size() == before) {
    std::fprintf(stderr, "1mcp token revoke: no token named \"%s\" in auth.tokens of %s\n",
                 name.c_str(), path.c_str());
    return 1;
  }
  tokens = std::move(kept);
  if (auto s = write_config_document(path, *doc); !s) {
    std::fprintf(stderr, "1mcp token revoke: %s\n", s.error().message.c_str());
    return 2;
  }
  std::fprintf(stderr,
               "1mcp: removed token \"%s\" from %s; a running server refuses it after SIGHUP or "
               "a restart.\n",
               name.c_str(), path.c_str());
  return 0;
}

Result<ServeAuth> setup_serve_auth(const policy::Config& config, const std::string& dir) {
  ServeAuth out;
  if (!config.auth.enabled()) return out;
  server::HttpAuthOptions o;
  o.config = config.auth;
  if (const auto& oauth = config.auth.oauth) {
    auth::JwksCache::Options jo;
    if (!oauth->jwks_file.empty()) {
      jo.source = fs::absolute(resolve(dir, oauth->jwks_file)).lexically_normal().string();
      jo.fetch = auth::jwks_file_source(jo.source);
    } else {
      jo.source = oauth->jwks_url;
      jo.fetch = auth::jwks_url_source(oauth->jwks_url);
    }
    const bool file = !oauth->jwks_file.empty();
    out.jwks = std::make_unique<auth::JwksCache>(std::move(jo));
    auto first = out.jwks->poll();
    if (first && !*first && file)
      return make_error("auth.oauth.jwksFile: " + first->error().message);
    out.jwks->start();
    o.jwks = out.jwks.get();
  }
  auto http = server::HttpAuth::create(std::move(o));
  if (!http) return http.error();
  out.http = std::move(*http);
  return out;
}

}  // namespace onemcp::cli
