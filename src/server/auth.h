// server/auth.h — authentication of the HTTP surface, checked before McpServer routes a request:
// static bearer tokens and JWT access tokens of an OAuth 2.1 authorization server (this server
// as the resource server of the MCP authorization specification), the protected resource
// metadata of RFC 9728, and the cookie the web page authenticates with.
// Every route needs a token except /health and the metadata. A request authenticated by
//   "Authorization: Bearer <token>", else the cookie set below,
// carries its principal in HttpRequest::principal: "token:<name>" for a static token,
// "oauth:<iss> <sub>" for a JWT. A browser cannot add a header to a navigation, so
// GET /?token=<token> checks the token once, sets it as an HttpOnly, SameSite=Strict cookie and
// redirects (303) to / without it. Refusals are 401 (no or an invalid token) or 403 (a valid JWT
// without a required scope) with a WWW-Authenticate challenge (RFC 6750) that, with OAuth, names
// the metadata. Tokens are never logged or repeated in answers.
// Thread-safety: admit() and set_tokens() may run on any thread concurrently; admit() never
// blocks (a JWK Set refresh it asks for runs on the cache's own thread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "auth/jwks_cache.h"
#include "auth/jwt.h"
#include "auth/tokens.h"
#include "base/result.h"
#include "policy/config.h"
#include "server/http_api.h"

namespace onemcp::server {

// The cookie the web page authenticates with after GET /?token=<token>.
inline constexpr std::string_view kAuthCookie = "1mcp_token";

struct HttpAuthOptions {
  policy::AuthConfig config;        // tokens and/or oauth; enabled()
  auth::JwksCache* jwks = nullptr;  // the issuer's keys; required with config.oauth (not owned)
  // Wall clock for the tokens' exp, nbf and iat.
  std::function<std::chrono::system_clock::time_point()> now = std::chrono::system_clock::now;
};

class HttpAuth {
 public:
  // Fails on an OAuth resource URI parse_url refuses, or OAuth without a key cache.
  static Result<std::unique_ptr<HttpAuth>> create(HttpAuthOptions options);

  // For every HTTP request, before routing. True: the request goes on (authenticated, with
  // req.principal set, or to /health). False: it has been answered here (a refusal, the
  // metadata, the page's cookie redirect).
  bool admit(HttpRequest& req, const Respond& respond) const;

  // Replaces the static tokens (SIGHUP: a revoked token is refused from now on).
  void set_tokens(const std::vector<policy::TokenConfig>& tokens);

  // With OAuth: the URL of the protected resource metadata, as challenges name it. Else empty.
  const std::string& resource_metadata_url() const { return metadata_url_; }

 private:
  struct Verdict;
  explicit HttpAuth(HttpAuthOptions options);
  bool check(HttpRequest& req, const Respond& respond) const;
  Verdict verify(std::string_view token) const;
  HttpResponse refusal(const Verdict& v, const std::string& path) const;
  HttpResponse metadata(const std::string& method) const;

  std::shared_ptr<const auth::TokenSet> tokens() const;

  HttpAuthOptions opts_;
  mutable std::mutex mu_;  // guards tokens_
  std::shared_ptr<const auth::TokenSet> tokens_;
  auth::JwtRules rules_;
  std::string metadata_url_;   // absolute
  std::string metadata_path_;  // local path of the path-suffixed form; empty for a root resource
};

}  // namespace onemcp::server
