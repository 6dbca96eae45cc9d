#include "server/auth.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "policy/egress.h"

namespace onemcp::server {

using nlohmann::json;

namespace {

constexpr std::string_view kMetadataPath = "/.well-known/oauth-protected-resource";

std::string header(const HttpRequest& r, const char* name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The credentials of "Authorization: Bearer <token>" (scheme case-insensitive); nullopt when
// the header is missing or uses another scheme.
std::optional<std::string> bearer(const HttpRequest& r) {
  std::string value = header(r, "authorization");
  std::string_view v = trim(value);
  if (v.size() < 7) return std::nullopt;
  std::string scheme(v.substr(0, 7));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  if (scheme != "bearer ") return std::nullopt;
  return std::string(trim(v.substr(7)));
}

// The value of cookie `name` (the first one) in the Cookie header.
std::optional<std::string> cookie(const HttpRequest& r, std::string_view name) {
  std::string value = header(r, "cookie");
  std::string_view rest = value;
  while (!rest.empty()) {
    size_t end = rest.find_first_of(";,");  // the transport joins repeated headers with ", "
    std::string_view pair = trim(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
      return std::string(trim(pair.substr(eq + 1)));
    }
  }
  return std::nullopt;
}

std::string percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += char(hex(s[i + 1]) << 4 | hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The `token` parameter of the query of `target`, if any.
std::optional<std::string> query_token(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string_view rest = std::string_view(target).substr(q + 1);
  while (!rest.empty()) {
    size_t end = rest.find('&');
    std::string_view pair = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (pair.starts_with("token=")) return percent_decode(pair.substr(6));
  }
  return std::nullopt;
}

// What a cookie value may hold unquoted (RFC 6265 cookie-octet, narrowed to what tokens use).
bool cookie_safe(std::string_view t) {
  return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

HttpResponse json_response(int status, const json& body) {
  return HttpResponse{status,
                      {{"Content-Type", "application/json"}},
                      body.dump(-1, ' ', false, json::error_handler_t::replace)};
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

struct HttpAuth::Verdict {
  enum Kind { ok, missing, invalid, insufficient_scope } kind = missing;
  std::string principal;  // ok
  std::string reason;     // public, for error_description
};

HttpAuth::HttpAuth(HttpAuthOptions options) : opts_(std::move(options)) {
  set_tokens(opts_.config.tokens);
}

void HttpAuth::set_tokens(const std::vector<policy::TokenConfig>& tokens) {
  std::vector<auth::NamedDigest> digests;
  for (const auto& t : tokens) digests.push_back({t.name, t.sha256});
  auto next = std::make_shared<const auth::TokenSet>(digests);
  std::lock_guard lk(mu_);
  tokens_ = std::move(next);
}

std::shared_ptr<const auth::TokenSet> HttpAuth::tokens() const {
  std::lock_guard lk(mu_);
  return tokens_;
}

Result<std::unique_ptr<HttpAuth>> HttpAuth::create(HttpAuthOptions options) {
  std::unique_ptr<HttpAuth> a(new HttpAuth(std::move(options)));
  if (const auto& oauth = a->opts_.config.oauth) {
    if (!a->opts_.jwks) return make_error("auth.oauth: no JWK Set to verify tokens with");
    auto url = policy::parse_url(oauth->resource);
    if (!url) return make_error("auth.oauth.resource: " + url.error().message);
    // RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
    std::string path = url->path_and_query.substr(0, url->path_and_query.find('?'));
    std::string serialized = url->serialize();
    std::string origin = serialized.substr(0, serialized.size() - url->path_and_query.size());
    if (path != "/") a->metadata_path_ = std::string(kMetadataPath) + path;
    a->metadata_url_ = origin + (path == "/" ? std::string(kMetadataPath) : a->metadata_path_);
    a->rules_.issuer = oauth->issuer;
    a->rules_.audience = oauth->resource;
    a->rules_.required_scopes = oauth->required_scopes;
    a->rules_.leeway = std::chrono::seconds(oauth->leeway_seconds);
  }
  return a;
}

HttpAuth::Verdict HttpAuth::verify(std::string_view token) const {
  if (token.empty()) return {Verdict::missing, "", ""};
  if (auto name = tokens()->match(token)) return {Verdict::ok, "token:" + *name, ""};
  if (opts_.config.oauth && auth::looks_like_jwt(token)) {
    auto keys = opts_.jwks->keys();
    if (!keys) {
      opts_.jwks->want_refresh();
      return {Verdict::invalid, "", "the server has no key to verify tokens with yet"};
    }
    auth::JwtVerdict v = auth::verify_jwt(token, *keys, rules_, opts_.now());
    switch (v.status) {
      case auth::JwtStatus::ok:
        return {Verdict::ok, "oauth:" + v.issuer + " " + v.subject, ""};
      case auth::JwtStatus::insufficient_scope:
        return {Verdict::insufficient_scope, "", v.reason};
      case auth::JwtStatus::unknown_key:
        opts_.jwks->want_refresh();  // the issuer may have rotated its keys
        return {Verdict::invalid, "", v.reason};
      case auth::JwtStatus::invalid:
        return {Verdict::invalid, "", v.reason};
    }
  }
  return {Verdict::invalid, "", "the token is not valid"};
}

HttpResponse HttpAuth::refusal(const Verdict& v, const std::string& path) const {
  // RFC 6750 §3: no error code when no credentials came; the scope a token needs on a 403 (and,
  // as the MCP specification suggests, on a 401 too, so a client knows what to ask for).
  std::vector<std::string> params;
  if (v.kind == Verdict::invalid) params.push_back("error=\"invalid_token\"");
  if (v.kind == Verdict::insufficient_scope) params.push_back("error=\"insufficient_scope\"");
  if (!v.reason.empty()) params.push_back("error_description=\"" + v.reason + "\"");
  if (opts_.config.oauth && !rules_.required_scopes.empty()) {
    params.push_back("scope=\"" + join(rules_.required_scopes, " ") + "\"");
  }
  if (metadata_url_.empty()) {
    params.insert(params.begin(), "realm=\"1mcp\"");
  } else {
    params.push_back("resource_metadata=\"" + metadata_url_ + "\"");
  }
  const bool forbidden = v.kind == Verdict::insufficient_scope;
  std::string description = !v.reason.empty() ? v.reason
                            : path == "/"
                                ? "authentication required: open /?token=<token>, or send "
                                  "\"Authorization: Bearer <token>\""
                                : "authentication required: send \"Authorization: Bearer <token>\"";
  HttpResponse r = json_response(forbidden ? 403 : 401,
                                 json{{"error", forbidden                    ? "insufficient_scope"
                                                : v.kind == Verdict::invalid ? "invalid_token"
                                                                             : "unauthorized"},
                                      {"error_description", description}});
  r.headers.push_back({"WWW-Authenticate", "Bearer " + join(params, ", ")});
  r.headers.push_back({"Cache-Control", "no-store"});
  return r;
}

HttpResponse HttpAuth::metadata(const std::string& method) const {
  if (method != "GET" && method != "HEAD") {
    HttpResponse r = json_response(405, json{{"error", "method not allowed"}});
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }
  const policy::OAuthConfig& o = *opts_.config.oauth;
  json servers =
      o.authorization_servers.empty() ? json::array({o.issuer}) : json(o.authorization_servers);
  return json_response(200, json{{"resource", o.resource},
                                 {"authorization_servers", std::move(servers)},
                                 {"scopes_supported", o.required_scopes},
                                 {"bearer_methods_supported", {"header"}},
                                 {"resource_name", "1mcp"}});
}

bool HttpAuth::admit(HttpRequest& req, const Respond& respond) const {
  try {
    return check(req, respond);
  } catch (const std::exception& e) {
    // A bug of ours. Refused, and logged without the target, whose query may hold a token.
    log::error(std::string("auth: internal error: ") + e.what());
    respond(json_response(500, json{{"error", "internal error"}}));
    return false;
  }
}

bool HttpAuth::check(HttpRequest& req, const Respond& respond) const {
  const std::string path = req.target.substr(0, req.target.find('?'));
  if (path == "/health") return true;
  if (opts_.config.oauth &&
      (path == kMetadataPath || (!metadata_path_.empty() && path == metadata_path_))) {
    respond(metadata(req.method));
    return false;
  }
  auto refuse = [&](const Verdict& v) {
    // Never the target's query: it may hold a token.
    log::debug("auth: refused " + req.method + " " + path + " from " + req.peer +
               (v.reason.empty() ? std::string(": no token") : ": " + v.reason));
    respond(refusal(v, path));
    return false;
  };

  // The web page: a token in the URL once, then a cookie the page's own requests carry.
  if (path == "/" && (req.method == "GET" || req.method == "HEAD")) {
    if (auto token = query_token(req.target)) {
      Verdict v = verify(*token);
      if (v.kind != Verdict::ok) return refuse(v);
      if (!cookie_safe(*token)) {
        return refuse({Verdict::invalid, "", "the token cannot be kept in a cookie"});
      }
      // Not Secure: this server speaks plain HTTP (behind a TLS proxy the browser still sends it
      // over https). HttpOnly keeps it from scripts; SameSite=Strict from other sites' requests.
      respond(HttpResponse{303,
                           {{"Location", "/"},
                            {"Set-Cookie", std::string(kAuthCookie) + "=" + *token +
                                               "; Path=/; HttpOnly; SameSite=Strict"},
                            {"Cache-Control", "no-store"},
                            {"Referrer-Policy", "no-referrer"}},
                           ""});
      return false;
    }
  }

  std::optional<std::string> token = bearer(req);
  if (!token && header(req, "authorization").empty()) token = cookie(req, kAuthCookie);
  Verdict v = verify(token.value_or(""));
  if (v.kind != Verdict::ok) return refuse(v);
  req.principal = std::move(v.principal);
  return true;
}

}  // namespace onemcp::server
