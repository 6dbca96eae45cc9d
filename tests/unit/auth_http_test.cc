// server/auth: every route refused without a valid token (except /health and the metadata), the
// WWW-Authenticate challenges, the protected resource metadata, the web page's cookie, the
// principals, and MCP sessions bound to the principal that created them.
#include <gtest/gtest.h>

#include "base/sha256.h"
#include "server/auth.h"
#include "server/mcp_server.h"
#include "test_jwt.h"

namespace onemcp::server {
namespace {

using nlohmann::json;
using namespace onemcp::testing_jwt;
using std::chrono::seconds;
using std::chrono::system_clock;

constexpr const char* kTokenA = "1mcp_alpha-token";
constexpr const char* kTokenB = "1mcp_bravo-token";
constexpr const char* kIssuer = "https://issuer.example.com";
constexpr const char* kResource = "https://mcp.example.com/mcp";
constexpr const char* kMetadataUrl =
    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

class NoRuns : public RunBackend {
 public:
  Result<sandbox::RunOutput> run(const RunSpec&, const sandbox::CancelToken*,
                                 const ProgressFn&) override {
    return make_error("no runs here");
  }
};

std::string header_of(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

HttpRequest request(std::string method, std::string target,
                    std::map<std::string, std::string> headers = {}, std::string body = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.peer = "127.0.0.1:5000";
  return r;
}

std::map<std::string, std::string> bearer(const std::string& token,
                                          std::map<std::string, std::string> h = {}) {
  h["authorization"] = "Bearer " + token;
  return h;
}

// What admit() did with one request: answered it, or let it through with a principal.
struct Admission {
  bool passed = false;
  std::string principal;
  std::optional<HttpResponse> response;
};

Admission admit(const HttpAuth& a, HttpRequest req) {
  Admission out;
  out.passed = a.admit(req, [&](HttpResponse r) { out.response = std::move(r); });
  out.principal = req.principal;
  EXPECT_NE(out.passed, out.response.has_value()) << "answered xor passed";
  return out;
}

policy::AuthConfig token_config() {
  policy::AuthConfig c;
  c.tokens = {{"alpha", sha256_hex(kTokenA)}, {"bravo", sha256_hex(kTokenB)}};
  return c;
}

class TokenAuthTest : public ::testing::Test {
 protected:
  TokenAuthTest() {
    HttpAuthOptions o;
    o.config = token_config();
    auto a = HttpAuth::create(std::move(o));
    EXPECT_TRUE(a);
    auth_ = std::move(*a);
  }
  std::unique_ptr<HttpAuth> auth_;
};

// Every route of the server, as McpServer routes them.
const std::vector<std::pair<std::string, std::string>> kRoutes = {
    {"GET", "/"},
    {"HEAD", "/"},
    {"GET", "/?x=1"},
    {"POST", "/mcp"},
    {"GET", "/mcp"},
    {"DELETE", "/mcp"},
    {"PUT", "/mcp"},
    {"GET", "/mcps"},
    {"GET", "/mcps/fs/tools"},
    {"GET", "/mcps/types.d.ts"},
    {"POST", "/mcps-rpc"},
    {"GET", "/capsules/" + std::string(64, 'a') + "/manifest.json"},
    {"GET", "/types"},
    {"GET", "/types/index.d.ts"},
    {"GET", "/nowhere"},
    {"GET", "/.well-known/oauth-protected-resource"},  // no OAuth: no metadata either
};

TEST_F(TokenAuthTest, EveryRouteButHealthNeedsAToken) {
  for (const auto& [method, target] : kRoutes) {
    for (const auto& headers : std::vector<std::map<std::string, std::string>>{
             {},
             bearer("1mcp_wrong"),
             bearer(""),
             {{"authorization", "Basic YWxwaGE6eA=="}},
             {{"authorization", kTokenA}},  // no scheme
             {{"cookie", "1mcp_token=1mcp_wrong"}},
             {{"cookie", "other=" + std::string(kTokenA)}}}) {
      Admission a = admit(*auth_, request(method, target, headers));
      ASSERT_FALSE(a.passed) << method << " " << target;
      EXPECT_EQ(a.response->status, 401) << method << " " << target;
      const std::string challenge = header_of(*a.response, "WWW-Authenticate");
      EXPECT_TRUE(challenge.starts_with("Bearer realm=\"1mcp\"")) << challenge;
      const bool wrong =
          headers.count("authorization")
              ? headers.at("authorization") == "Bearer 1mcp_wrong"
              : headers.count("cookie") && headers.at("cookie").starts_with("1mcp_token");
      EXPECT_EQ(challenge.find("error=\"invalid_token\"") != std::string::npos, wrong)
          << method << " " << target << ": " << challenge;
      EXPECT_EQ(json::parse(a.response->body)["error"], wrong ? "invalid_token" : "unauthorized");
      EXPECT_EQ(a.response->body.find(kTokenA), std::string::npos);
    }
  }
  Admission health = admit(*auth_, request("GET", "/health"));
  EXPECT_TRUE(health.passed);
  EXPECT_EQ(health.principal, "");
}

TEST_F(TokenAuthTest, AValidTokenGivesItsPrincipal) {
  for (const auto& [method, target] : kRoutes) {
    Admission a = admit(*auth_, request(method, target, bearer(kTokenA)));
    EXPECT_TRUE(a.passed) << method << " " << target;
    EXPECT_EQ(a.principal, "token:alpha");
  }
  EXPECT_EQ(admit(*auth_, request("POST", "/mcp", bearer(kTokenB))).principal, "token:bravo");
  EXPECT_EQ(
      admit(*auth_, request("POST", "/mcp", {{"authorization", std::string("bearer  ") + kTokenB}}))
          .principal,
      "token:bravo")
      << "the scheme is case-insensitive";
  // The header wins over a cookie; a wrong header is not rescued by a good cookie.
  auto both = bearer("1mcp_wrong", {{"cookie", std::string("1mcp_token=") + kTokenA}});
  EXPECT_FALSE(admit(*auth_, request("POST", "/mcp", both)).passed);
}

TEST_F(TokenAuthTest, RevokedTokensAreRefusedAtOnce) {
  EXPECT_TRUE(admit(*auth_, request("POST", "/mcp", bearer(kTokenB))).passed);
  auth_->set_tokens({{"alpha", sha256_hex(kTokenA)}});
  EXPECT_FALSE(admit(*auth_, request("POST", "/mcp", bearer(kTokenB))).passed);
  EXPECT_TRUE(admit(*auth_, request("POST", "/mcp", bearer(kTokenA))).passed);
}

TEST_F(TokenAuthTest, ThePageTakesTheTokenOnceAndThenACookie) {
  Admission a = admit(*auth_, request("GET", std::string("/?token=") + kTokenA));
  ASSERT_FALSE(a.passed);
  EXPECT_EQ(a.response->status, 303);
  EXPECT_EQ(header_of(*a.response, "Location"), "/");
  EXPECT_EQ(header_of(*a.response, "Set-Cookie"),
            std::string("1mcp_token=") + kTokenA + "; Path=/; HttpOnly; SameSite=Strict");
  EXPECT_EQ(header_of(*a.response, "Cache-Control"), "no-store");
  EXPECT_EQ(header_of(*a.response, "Referrer-Policy"), "no-referrer");

  for (std::string cookie : {std::string("1mcp_token=") + kTokenA,
                             std::string("a=b; 1mcp_token=") + kTokenA + "; c=d"}) {
    for (const auto& [method, target] : kRoutes) {
      Admission c = admit(*auth_, request(method, target, {{"cookie", cookie}}));
      EXPECT_TRUE(c.passed) << cookie << " " << method << " " << target;
      EXPECT_EQ(c.principal, "token:alpha");
    }
  }
  // A wrong token in the URL sets nothing; the query is honoured on the page only.
  Admission bad = admit(*auth_, request("GET", "/?token=1mcp_wrong"));
  EXPECT_EQ(bad.response->status, 401);
  EXPECT_EQ(header_of(*bad.response, "Set-Cookie"), "");
  for (std::string target : {"/types?token=", "/mcp?token=", "/health/?token="}) {
    Admission q = admit(*auth_, request("GET", target + kTokenA));
    EXPECT_FALSE(q.passed) << target;
    EXPECT_EQ(q.response->status, 401) << target;
  }
  // POST /?token= is not the page.
  EXPECT_EQ(admit(*auth_, request("POST", std::string("/?token=") + kTokenA)).response->status,
            401);
}

class OAuthTest : public ::testing::Test {
 protected:
  OAuthTest() : rsa_(make_key("RSA")), ed_(make_key("Ed25519")) {
    json set = {{"keys", json::array({public_jwk(rsa_, "rsa"), public_jwk(ed_, "ed")})}};
    set_text_ = set.dump();
    auth::JwksCache::Options jo;
    jo.fetch = [this]() -> Result<std::string> {
      ++fetches_;
      return set_text_;
    };
    jo.now = [this] { return steady_; };
    jwks_ = std::make_unique<auth::JwksCache>(std::move(jo));
    EXPECT_TRUE(jwks_->poll());

    HttpAuthOptions o;
    o.config = token_config();
    policy::OAuthConfig oc;
    oc.issuer = kIssuer;
    oc.resource = kResource;
    oc.jwks_url = "https://issuer.example.com/jwks";
    oc.required_scopes = {"mcp:run"};
    o.config.oauth = oc;
    o.jwks = jwks_.get();
    o.now = [this] { return now_; };
    auto a = HttpAuth::create(std::move(o));
    EXPECT_TRUE(a);
    auth_ = std::move(*a);
  }

  std::string token(json changes = json::object(), const std::string& kid = "ed") {
    const auto t = system_clock::to_time_t(now_);
    json c = {{"iss", kIssuer},
              {"aud", kResource},
              {"sub", "alice"},
              {"exp", t + 300},
              {"scope", "mcp:run"}};
    for (auto& [k, v] : changes.items()) c[k] = v;
    return make_token(kid == "rsa" ? rsa_ : ed_, kid == "rsa" ? "RS256" : "EdDSA", {{"kid", kid}},
                      c);
  }

  Key rsa_, ed_;
  std::string set_text_;
  int fetches_ = 0;
  std::chrono::steady_clock::time_point steady_{};
  system_clock::time_point now_ = system_clock::time_point(seconds(1'800'000'000));
  std::unique_ptr<auth::JwksCache> jwks_;
  std::unique_ptr<HttpAuth> auth_;
};

TEST_F(OAuthTest, MetadataIsOpenAndDescribesTheResource) {
  EXPECT_EQ(auth_->resource_metadata_url(), kMetadataUrl);
  for (std::string path :
       {"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}) {
    Admission a = admit(*auth_, request("GET", path));
    ASSERT_FALSE(a.passed) << path;
    EXPECT_EQ(a.response->status, 200) << path;
    EXPECT_EQ(json::parse(a.response->body), (json{{"resource", kResource},
                                                   {"authorization_servers", {kIssuer}},
                                                   {"scopes_supported", {"mcp:run"}},
                                                   {"bearer_methods_supported", {"header"}},
                                                   {"resource_name", "1mcp"}}))
        << path;
    EXPECT_EQ(admit(*auth_, request("POST", path)).response->status, 405);
  }
  EXPECT_EQ(
      admit(*auth_, request("GET", "/.well-known/oauth-protected-resource/other")).response->status,
      401);
}

TEST_F(OAuthTest, ChallengesNameTheMetadata) {
  Admission none = admit(*auth_, request("POST", "/mcp"));
  EXPECT_EQ(none.response->status, 401);
  EXPECT_EQ(header_of(*none.response, "WWW-Authenticate"),
            std::string("Bearer scope=\"mcp:run\", resource_metadata=\"") + kMetadataUrl + "\"");

  Admission expired =
      admit(*auth_, request("POST", "/mcp", bearer(token({{"exp", 1'700'000'000}}))));
  EXPECT_EQ(expired.response->status, 401);
  EXPECT_EQ(header_of(*expired.response, "WWW-Authenticate"),
            std::string("Bearer error=\"invalid_token\", error_description=\"the token has "
                        "expired\", scope=\"mcp:run\", resource_metadata=\"") +
                kMetadataUrl + "\"");

  Admission scope = admit(*auth_, request("POST", "/mcp", bearer(token({{"scope", "other"}}))));
  EXPECT_EQ(scope.response->status, 403);
  EXPECT_EQ(header_of(*scope.response, "WWW-Authenticate"),
            std::string("Bearer error=\"insufficient_scope\", error_description=\"the token "
                        "lacks a required scope\", scope=\"mcp:run\", resource_metadata=\"") +
                kMetadataUrl + "\"");
  EXPECT_EQ(json::parse(scope.response->body)["error"], "insufficient_scope");

  Admission wrong_aud = admit(
      *auth_, request("GET", "/types", bearer(token({{"aud", "https://other.example.com/mcp"}}))));
  EXPECT_EQ(wrong_aud.response->status, 401);
}

TEST_F(OAuthTest, PrincipalsOfJwtsAndStaticTokens) {
  for (const char* kid : {"ed", "rsa"}) {
    Admission a = admit(*auth_, request("POST", "/mcp", bearer(token(json::object(), kid))));
    EXPECT_TRUE(a.passed) << kid;
    EXPECT_EQ(a.principal, std::string("oauth:") + kIssuer + " alice");
  }
  EXPECT_EQ(admit(*auth_, request("POST", "/mcp", bearer(kTokenA))).principal, "token:alpha");
  // The page with a JWT.
  Admission page = admit(*auth_, request("GET", "/?token=" + token()));
  EXPECT_EQ(page.response->status, 303);
  Admission page_scope = admit(*auth_, request("GET", "/?token=" + token({{"scope", ""}})));
  EXPECT_EQ(page_scope.response->status, 403);
}

TEST_F(OAuthTest, UnknownKeyAsksForARefresh) {
  const Key rotated = make_key("Ed25519");
  const auto t = system_clock::to_time_t(now_);
  const std::string t2 = make_token(rotated, "EdDSA", {{"kid", "new"}},
                                    {{"iss", kIssuer},
                                     {"aud", kResource},
                                     {"sub", "bob"},
                                     {"exp", t + 300},
                                     {"scope", "mcp:run"}});
  EXPECT_EQ(admit(*auth_, request("POST", "/mcp", bearer(t2))).response->status, 401);
  set_text_ = json{{"keys", json::array({public_jwk(rotated, "new")})}}.dump();
  steady_ += std::chrono::seconds(29);
  EXPECT_FALSE(jwks_->poll()) << "not before the minimum gap";
  steady_ += std::chrono::seconds(1);
  ASSERT_TRUE(jwks_->poll()) << "the unknown kid asked for a refresh";
  EXPECT_EQ(fetches_, 2);
  Admission a = admit(*auth_, request("POST", "/mcp", bearer(t2)));
  EXPECT_TRUE(a.passed);
  EXPECT_EQ(a.principal, std::string("oauth:") + kIssuer + " bob");
}

// ---- sessions belong to their principal ----

class SessionOwnerTest : public TokenAuthTest {
 protected:
  SessionOwnerTest() : server_(options(), policy::Config{}, backend_) {}
  ServerOptions options() {
    ServerOptions o;
    o.auth = auth_.get();
    return o;
  }
  HttpResponse call(HttpRequest r) {
    std::optional<HttpResponse> out;
    server_.handle(std::move(r), [&](HttpResponse resp) { out = std::move(resp); });
    EXPECT_TRUE(out.has_value());
    return out.value_or(HttpResponse{0, {}, ""});
  }
  HttpResponse post(const std::string& token, const json& body, const std::string& sid = "") {
    auto h = bearer(token, {{"content-type", "application/json"},
                            {"accept", "application/json, text/event-stream"}});
    if (!sid.empty()) h["mcp-session-id"] = sid;
    return call(request("POST", "/mcp", h, body.dump()));
  }

  NoRuns backend_;
  McpServer server_;
};

TEST_F(SessionOwnerTest, AnotherPrincipalCannotUseOrCloseASession) {
  HttpResponse init = post(kTokenA, {{"jsonrpc", "2.0"},
                                     {"id", 1},
                                     {"method", "initialize"},
                                     {"params",
                                      {{"protocolVersion", "2025-06-18"},
                                       {"capabilities", json::object()},
                                       {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}});
  ASSERT_EQ(init.status, 200) << init.body;
  const std::string sid = header_of(init, "Mcp-Session-Id");
  ASSERT_FALSE(sid.empty());
  const json ping = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}};

  HttpResponse stolen = post(kTokenB, ping, sid);
  EXPECT_EQ(stolen.status, 404);
  EXPECT_EQ(json::parse(stolen.body)["error"]["message"], "Session not found");
  auto del = bearer(kTokenB, {{"mcp-session-id", sid}});
  EXPECT_EQ(call(request("DELETE", "/mcp", del)).status, 404);
  auto get = bearer(kTokenB, {{"mcp-session-id", sid}, {"accept", "text/event-stream"}});
  HttpRequest stream = request("GET", "/mcp", get);
  stream.start_stream = [](HttpResponse) -> std::shared_ptr<EventStream> {
    ADD_FAILURE() << "a stream was opened for another principal's session";
    return nullptr;
  };
  EXPECT_EQ(call(std::move(stream)).status, 404);

  EXPECT_EQ(post(kTokenA, ping, sid).status, 200) << "still the owner's";
  EXPECT_EQ(server_.session_count(), 1u);
  EXPECT_EQ(call(request("DELETE", "/mcp", bearer(kTokenA, {{"mcp-session-id", sid}}))).status,
            200);
  EXPECT_EQ(server_.session_count(), 0u);
}

}  // namespace
}  // namespace onemcp::server
