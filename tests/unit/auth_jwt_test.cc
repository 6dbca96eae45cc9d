// auth/: JWT verification against a JWK Set (signatures, algorithm confusion, claims, malformed
// input), the JWK Set parser and cache, static tokens and base64url.
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <atomic>
#include <thread>

#include "auth/base64url.h"
#include "auth/jwks_cache.h"
#include "auth/jwt.h"
#include "auth/tokens.h"
#include "base/sha256.h"
#include "test_jwt.h"

namespace onemcp::auth {
namespace {

using nlohmann::json;
using namespace onemcp::testing_jwt;
using std::chrono::seconds;
using std::chrono::system_clock;

constexpr const char* kIssuer = "https://issuer.example.com";
constexpr const char* kResource = "https://mcp.example.com/mcp";

// Key generation is slow (RSA): once for every test.
struct Keys {
  Key rsa = make_key("RSA"), rsa2 = make_key("RSA"), p256 = make_key("P-256"),
      p384 = make_key("P-384"), ed = make_key("Ed25519");
};
const Keys& keys() {
  static const Keys k;
  return k;
}

class JwtTest : public ::testing::Test {
 protected:
  JwtTest() {
    json set = {
        {"keys", json::array({public_jwk(keys().rsa, "rsa"), public_jwk(keys().p256, "p256"),
                              public_jwk(keys().p384, "p384"), public_jwk(keys().ed, "ed"),
                              public_jwk(keys().rsa2, "rs256-only", {{"alg", "RS256"}})})}};
    auto parsed = Jwks::parse(set.dump());
    EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message);
    jwks_ = *parsed;
    rules_.issuer = kIssuer;
    rules_.audience = kResource;
  }

  json claims() const {
    const auto t = system_clock::to_time_t(now_);
    return {{"iss", kIssuer}, {"aud", kResource}, {"sub", "alice"},
            {"exp", t + 300}, {"iat", t - 10},    {"scope", "mcp:run other"}};
  }

  JwtVerdict check(const std::string& token) const {
    return verify_jwt(token, *jwks_, rules_, now_);
  }
  void expect_invalid(const std::string& token, const std::string& reason_part,
                      const std::string& what) const {
    JwtVerdict v = check(token);
    EXPECT_EQ(v.status, JwtStatus::invalid) << what << ": " << v.reason;
    EXPECT_NE(v.reason.find(reason_part), std::string::npos) << what << ": " << v.reason;
  }

  std::shared_ptr<const Jwks> jwks_;
  JwtRules rules_;
  system_clock::time_point now_ = system_clock::time_point(seconds(1'800'000'000));
};

TEST_F(JwtTest, ValidTokensOfEveryAlgorithm) {
  struct Case {
    const char* alg;
    const Key& key;
    const char* kid;
  };
  for (const Case& c : {Case{"RS256", keys().rsa, "rsa"}, Case{"RS384", keys().rsa, "rsa"},
                        Case{"RS512", keys().rsa, "rsa"}, Case{"PS256", keys().rsa, "rsa"},
                        Case{"PS384", keys().rsa, "rsa"}, Case{"PS512", keys().rsa, "rsa"},
                        Case{"ES256", keys().p256, "p256"}, Case{"ES384", keys().p384, "p384"},
                        Case{"EdDSA", keys().ed, "ed"}}) {
    JwtVerdict v = check(make_token(c.key, c.alg, {{"kid", c.kid}, {"typ", "at+jwt"}}, claims()));
    EXPECT_EQ(v.status, JwtStatus::ok) << c.alg << ": " << v.reason;
    EXPECT_EQ(v.issuer, kIssuer);
    EXPECT_EQ(v.subject, "alice");
    EXPECT_EQ(v.scopes, (std::vector<std::string>{"mcp:run", "other"}));
  }
}

TEST_F(JwtTest, WithoutKidEveryKeyOfTheAlgorithmIsTried) {
  EXPECT_EQ(check(make_token(keys().ed, "EdDSA", json::object(), claims())).status, JwtStatus::ok);
  EXPECT_EQ(check(make_token(keys().rsa2, "RS256", json::object(), claims())).status,
            JwtStatus::ok);
}

TEST_F(JwtTest, WrongSignature) {
  std::string good = make_token(keys().rsa, "RS256", {{"kid", "rsa"}}, claims());
  // Another key under the same kid.
  expect_invalid(make_token(keys().rsa2, "RS256", {{"kid", "rsa"}}, claims()), "signature",
                 "other RSA key");
  expect_invalid(make_token(make_key("P-256"), "ES256", {{"kid", "p256"}}, claims()), "signature",
                 "other EC key");
  expect_invalid(make_token(make_key("Ed25519"), "EdDSA", {{"kid", "ed"}}, claims()), "signature",
                 "other Ed25519 key");
  // The claims changed after signing.
  const size_t d1 = good.find('.'), d2 = good.rfind('.');
  json changed = claims();
  changed["sub"] = "mallory";
  expect_invalid(good.substr(0, d1 + 1) + b64(changed) + good.substr(d2), "signature",
                 "payload swapped");
  // One bit of the signature flipped.
  std::string sig = *base64url_decode(good.substr(d2 + 1));
  sig[10] ^= 1;
  expect_invalid(good.substr(0, d2 + 1) + base64url_encode(sig), "signature", "bit flipped");
  // A PKCS#1 v1.5 signature presented as PSS, and the reverse.
  std::string rs = make_token(keys().rsa, "RS256", {{"kid", "rsa"}}, claims());
  std::string ps = make_token(keys().rsa, "PS256", {{"kid", "rsa"}}, claims());
  expect_invalid(b64({{"alg", "PS256"}, {"kid", "rsa"}}) + rs.substr(rs.find('.')), "signature",
                 "RS as PS");
  expect_invalid(b64({{"alg", "RS256"}, {"kid", "rsa"}}) + ps.substr(ps.find('.')), "signature",
                 "PS as RS");
  // ECDSA signature of the wrong length.
  std::string es = make_token(keys().p256, "ES256", {{"kid", "p256"}}, claims());
  expect_invalid(es + "AA", "signature", "ES256 signature too long");
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  const std::string input = b64({{"alg", "none"}}) + "." + b64(claims());
  expect_invalid(input + ".", "malformed", "none, empty signature");
  expect_invalid(input + ".AAAA", "algorithm is not accepted", "none, some signature");
  expect_invalid(b64({{"alg", "None"}, {"kid", "rsa"}}) + "." + b64(claims()) + ".AAAA",
                 "algorithm is not accepted", "None");
  expect_invalid(b64({{"kid", "rsa"}}) + "." + b64(claims()) + ".AAAA", "no algorithm", "no alg");
  expect_invalid(b64({{"alg", 256}}) + "." + b64(claims()) + ".AAAA", "no algorithm",
                 "alg a number");
}

TEST_F(JwtTest, HmacWithThePublicKeyIsRefused) {
  // The classic confusion: HS256 "signed" with the RSA public key's bytes as the secret.
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, keys().rsa.get());
  char* pem_data = nullptr;
  long pem_len = BIO_get_mem_data(bio, &pem_data);
  const std::string pem(pem_data, size_t(pem_len));
  BIO_free(bio);
  const std::string n = json(public_jwk(keys().rsa, ""))["n"];
  for (const std::string& secret : {pem, n, *base64url_decode(n)}) {
    for (const char* alg : {"HS256", "HS384", "HS512"}) {
      std::string input = b64({{"alg", alg}, {"kid", "rsa"}}) + "." + b64(claims());
      expect_invalid(input + "." + base64url_encode(hmac_sha256(secret, input)),
                     "algorithm is not accepted", alg);
    }
  }
}

TEST_F(JwtTest, AlgorithmMustMatchTheKey) {
  // Each signed with the key of its header's algorithm family, but naming another key.
  expect_invalid(make_token(keys().p256, "ES256", {{"kid", "rsa"}}, claims()),
                 "does not match its key", "ES256 with an RSA kid");
  expect_invalid(make_token(keys().rsa, "RS256", {{"kid", "p256"}}, claims()),
                 "does not match its key", "RS256 with an EC kid");
  expect_invalid(make_token(keys().p384, "ES384", {{"kid", "p256"}}, claims()),
                 "does not match its key", "ES384 with a P-256 kid");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "p256"}}, claims()),
                 "does not match its key", "EdDSA with an EC kid");
  expect_invalid(make_token(keys().rsa, "RS256", {{"kid", "ed"}}, claims()),
                 "does not match its key", "RS256 with an OKP kid");
  // The JWK's own "alg" restricts it: the same RSA key, another RSA algorithm.
  expect_invalid(make_token(keys().rsa2, "PS256", {{"kid", "rs256-only"}}, claims()),
                 "does not match its key", "PS256 with an RS256-only key");
  expect_invalid(make_token(keys().rsa2, "RS512", {{"kid", "rs256-only"}}, claims()),
                 "does not match its key", "RS512 with an RS256-only key");
}

TEST_F(JwtTest, UnknownKid) {
  JwtVerdict v = check(make_token(keys().rsa, "RS256", {{"kid", "rotated"}}, claims()));
  EXPECT_EQ(v.status, JwtStatus::unknown_key) << v.reason;
  // No kid and no key for the algorithm at all: maybe a key not fetched yet.
  auto only_ed = Jwks::parse(json{{"keys", json::array({public_jwk(keys().ed, "ed")})}}.dump());
  ASSERT_TRUE(only_ed);
  v = verify_jwt(make_token(keys().rsa, "RS256", json::object(), claims()), **only_ed, rules_,
                 now_);
  EXPECT_EQ(v.status, JwtStatus::unknown_key) << v.reason;
}

TEST_F(JwtTest, CritHeaderAndTypes) {
  expect_invalid(
      make_token(keys().ed, "EdDSA", {{"kid", "ed"}, {"crit", json::array({"exp"})}}, claims()),
      "critical", "crit");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}, {"typ", "dpop+jwt"}}, claims()),
                 "type", "typ dpop+jwt");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}, {"typ", 1}}, claims()), "type",
                 "typ a number");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", 7}}, claims()), "malformed",
                 "kid a number");
  for (const char* typ : {"JWT", "jwt", "at+jwt", "application/at+jwt"}) {
    EXPECT_EQ(check(make_token(keys().ed, "EdDSA", {{"kid", "ed"}, {"typ", typ}}, claims())).status,
              JwtStatus::ok)
        << typ;
  }
}

TEST_F(JwtTest, Issuer) {
  json c = claims();
  c["iss"] = "https://evil.example.com";
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "issuer", "other issuer");
  c["iss"] = std::string(kIssuer) + "/";
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "issuer", "trailing slash");
  c.erase("iss");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "issuer", "no iss");
}

TEST_F(JwtTest, Audience) {
  auto with_aud = [&](json aud) {
    json c = claims();
    if (aud.is_null()) {
      c.erase("aud");
    } else {
      c["aud"] = aud;
    }
    return make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c);
  };
  expect_invalid(with_aud(nullptr), "audience", "no aud");
  expect_invalid(with_aud("https://other.example.com/mcp"), "audience", "other aud");
  expect_invalid(with_aud("https://mcp.example.com"), "audience", "aud without the path");
  expect_invalid(with_aud(json::array({"https://a.example.com", "https://b.example.com"})),
                 "audience", "array without it");
  expect_invalid(with_aud(json::array()), "audience", "empty array");
  expect_invalid(with_aud(json::array({json::array({kResource})})), "audience", "nested");
  EXPECT_EQ(check(with_aud(json::array({"https://a.example.com", kResource}))).status,
            JwtStatus::ok);
  EXPECT_EQ(check(with_aud(kResource)).status, JwtStatus::ok);
}

TEST_F(JwtTest, LifetimeAndLeeway) {
  const auto t = system_clock::to_time_t(now_);
  auto with = [&](const char* claim, json value) {
    json c = claims();
    if (value.is_null()) {
      c.erase(claim);
    } else {
      c[claim] = value;
    }
    return make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c);
  };
  expect_invalid(with("exp", nullptr), "no expiry", "no exp");
  expect_invalid(with("exp", std::to_string(t + 300)), "malformed", "exp a string");
  expect_invalid(with("exp", t - 61), "expired", "expired beyond the leeway");
  expect_invalid(with("exp", t - 3600), "expired", "expired an hour ago");
  EXPECT_EQ(check(with("exp", t - 30)).status, JwtStatus::ok) << "within the 60 s leeway";
  EXPECT_EQ(check(with("exp", 1.8e9 + 0.5)).status, JwtStatus::ok) << "a fractional exp";
  expect_invalid(with("nbf", t + 61), "not valid yet", "nbf beyond the leeway");
  EXPECT_EQ(check(with("nbf", t + 30)).status, JwtStatus::ok) << "nbf within the leeway";
  expect_invalid(with("nbf", "soon"), "malformed", "nbf a string");
  expect_invalid(with("iat", t + 120), "issued in the future", "iat in the future");
  EXPECT_EQ(check(with("iat", t + 30)).status, JwtStatus::ok) << "iat within the leeway";

  rules_.leeway = seconds(0);
  expect_invalid(with("exp", t), "expired", "exp now without leeway");
  expect_invalid(with("exp", t - 30), "expired", "30 s ago without leeway");
  expect_invalid(with("nbf", t + 30), "not valid yet", "nbf 30 s ahead without leeway");
  EXPECT_EQ(check(with("exp", t + 1)).status, JwtStatus::ok);
}

TEST_F(JwtTest, Subject) {
  json c = claims();
  c.erase("sub");
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "subject", "no sub");
  c["sub"] = "";
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "subject", "empty sub");
  c["sub"] = 42;
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "subject", "sub a number");
}

TEST_F(JwtTest, RequiredScopes) {
  rules_.required_scopes = {"mcp:run", "mcp:read"};
  auto with = [&](const char* claim, json value) {
    json c = claims();
    c.erase("scope");
    if (!value.is_null()) c[claim] = value;
    return check(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c));
  };
  JwtVerdict v = with("scope", "mcp:run");
  EXPECT_EQ(v.status, JwtStatus::insufficient_scope);
  EXPECT_EQ(v.subject, "alice");
  EXPECT_EQ(with("scope", nullptr).status, JwtStatus::insufficient_scope);
  EXPECT_EQ(with("scope", "mcp:run mcp:readx").status, JwtStatus::insufficient_scope);
  EXPECT_EQ(with("scope", "mcp:run  mcp:read").status, JwtStatus::ok);
  EXPECT_EQ(with("scope", "x mcp:read mcp:run").status, JwtStatus::ok);
  EXPECT_EQ(with("scp", json::array({"mcp:read", "mcp:run"})).status, JwtStatus::ok);
  EXPECT_EQ(with("scp", "mcp:read mcp:run").status, JwtStatus::ok);
  EXPECT_EQ(with("scp", json::array({"mcp:read"})).status, JwtStatus::insufficient_scope);
  EXPECT_EQ(with("scope", json::array({"mcp:read", "mcp:run"})).status,
            JwtStatus::insufficient_scope)
      << "scope must be a string";
}

TEST_F(JwtTest, MalformedTokens) {
  const std::string good = make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, claims());
  ASSERT_EQ(check(good).status, JwtStatus::ok);
  const size_t d1 = good.find('.'), d2 = good.rfind('.');
  const std::string h = good.substr(0, d1), p = good.substr(d1 + 1, d2 - d1 - 1),
                    s = good.substr(d2 + 1);
  struct Case {
    std::string token, reason, what;
  };
  const std::vector<Case> cases = {
      {"", "malformed", "empty"},
      {"abc", "malformed", "one segment"},
      {h + "." + p, "malformed", "two segments"},
      {h + "." + p + "." + s + ".x", "malformed", "four segments"},
      {h + "." + p + "." + s + ".x.y", "encrypted", "five segments (JWE)"},
      {"." + p + "." + s, "malformed", "empty header"},
      {h + ".." + s, "malformed", "empty payload"},
      {h + "." + p + ".", "malformed", "empty signature"},
      {h + "=." + p + "." + s, "malformed", "padding"},
      {h + "." + p + "." + s + "=", "malformed", "padded signature"},
      {h + "." + p + "+" + "." + s, "malformed", "standard base64 character"},
      {h + " ." + p + "." + s, "malformed", "space"},
      {h + "." + p + "." + s.substr(0, s.size() - 1) + "B", "malformed", "non-canonical"},
      {"AAAAA." + p + "." + s, "malformed", "length 1 mod 4"},
      {base64url_encode("{\"alg\":\"EdDSA\",") + "." + p + "." + s, "malformed", "header not JSON"},
      {base64url_encode("[\"EdDSA\"]") + "." + p + "." + s, "malformed", "header an array"},
      {base64url_encode(std::string(100, '[')) + "." + p + "." + s, "malformed", "deep header"},
  };
  for (const auto& c : cases) expect_invalid(c.token, c.reason, c.what);
  // A payload that is not JSON, correctly signed.
  const std::string input = h + "." + base64url_encode("not json");
  expect_invalid(input + "." + base64url_encode(sign(keys().ed, "EdDSA", input)), "claims",
                 "payload not JSON");
}

TEST_F(JwtTest, OversizedTokens) {
  json c = claims();
  c["pad"] = std::string(kMaxJwtBytes, 'x');
  expect_invalid(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c), "too large", "large claims");
  c["pad"] = std::string(kMaxJwtBytes / 2, 'x');  // fits once encoded
  EXPECT_EQ(check(make_token(keys().ed, "EdDSA", {{"kid", "ed"}}, c)).status, JwtStatus::ok);
}

TEST(Jwks, ParseErrorsAndSkippedKeys) {
  const Key ed = keys().ed;
  auto parse = [](const json& j) { return Jwks::parse(j.dump()); };
  EXPECT_FALSE(Jwks::parse("not json"));
  EXPECT_FALSE(Jwks::parse("[]"));
  EXPECT_FALSE(parse({{"keys", json::object()}}));
  EXPECT_FALSE(parse({{"keys", json::array()}})) << "no usable key";
  EXPECT_FALSE(parse({{"keys", json::array({json{{"kty", "oct"}, {"k", "c2VjcmV0"}}})}}))
      << "only a symmetric key";
  EXPECT_FALSE(parse({{"keys", json::array({public_jwk(ed, "a", {{"use", "enc"}})})}}));
  EXPECT_FALSE(parse(
      {{"keys", json::array({public_jwk(ed, "a", {{"key_ops", json::array({"encrypt"})}})})}}));
  EXPECT_FALSE(parse({{"keys", json::array({public_jwk(ed, "a", {{"alg", "RS256"}})})}}))
      << "an Ed25519 key restricted to RS256 is unusable";
  EXPECT_FALSE(parse({{"keys", json::array({public_jwk(ed, "a", {{"d", "AAAA"}})})}}))
      << "private key";
  const json small = public_jwk(make_key("RSA1024"), "small");
  EXPECT_FALSE(parse({{"keys", json::array({small})}})) << "1024-bit RSA only";
  EXPECT_FALSE(parse({{"keys", json::array({public_jwk(ed, "a", {{"x", "AAAA"}})})}}))
      << "short Ed25519 x";
  json off_curve = public_jwk(keys().p256, "p");
  off_curve["y"] = off_curve["x"];
  EXPECT_FALSE(parse({{"keys", json::array({off_curve})}})) << "a point not on the curve";
  json many = {{"keys", json::array()}};
  for (int i = 0; i < 65; ++i) many["keys"].push_back(public_jwk(ed, std::to_string(i)));
  EXPECT_FALSE(parse(many)) << "more than 64 keys";

  auto mixed = parse(
      {{"keys",
        json::array(
            {json{{"kty", "oct"}, {"kid", "hmac"}}, public_jwk(ed, "enc", {{"use", "enc"}}),
             json{{"kty", "EC"}, {"crv", "secp256k1"}, {"x", "AA"}, {"y", "AA"}}, small,
             public_jwk(ed, "sig", {{"use", "sig"}, {"key_ops", json::array({"verify"})}})})}});
  ASSERT_TRUE(mixed) << mixed.error().message;
  EXPECT_EQ((*mixed)->size(), 1u);
}

// A fetch function and clock the test drives.
struct FakeSource {
  std::string text;
  bool fail = false;
  int calls = 0;
  std::chrono::steady_clock::time_point now{};
};

TEST(JwksCache, RefreshesPeriodicallyOnDemandAndKeepsGoodKeys) {
  FakeSource src;
  const json one = {{"keys", json::array({public_jwk(keys().ed, "one")})}};
  const json two = {
      {"keys", json::array({public_jwk(keys().ed, "one"), public_jwk(keys().p256, "two")})}};
  src.text = one.dump();
  JwksCache::Options o;
  o.fetch = [&]() -> Result<std::string> {
    ++src.calls;
    if (src.fail) return make_error("unreachable");
    return src.text;
  };
  o.now = [&] { return src.now; };
  o.refresh_every = std::chrono::minutes(10);
  o.min_gap = std::chrono::seconds(30);
  JwksCache cache(std::move(o));
  EXPECT_EQ(cache.keys(), nullptr);

  auto fetched = cache.poll();
  ASSERT_TRUE(fetched && *fetched);
  EXPECT_EQ(cache.keys()->size(), 1u);
  EXPECT_FALSE(cache.poll()) << "nothing due";

  // A token with an unknown kid: refreshed, but not before min_gap.
  src.text = two.dump();
  cache.want_refresh();
  src.now += std::chrono::seconds(29);
  EXPECT_FALSE(cache.poll()) << "rate-limited";
  src.now += std::chrono::seconds(1);
  fetched = cache.poll();
  ASSERT_TRUE(fetched && *fetched);
  EXPECT_EQ(cache.keys()->size(), 2u);
  EXPECT_FALSE(cache.poll()) << "the wish was served";
  EXPECT_EQ(src.calls, 2);

  // Periodic refresh; a failure keeps the last good keys and is retried after min_gap.
  src.fail = true;
  src.now += std::chrono::minutes(10);
  fetched = cache.poll();
  ASSERT_TRUE(fetched);
  EXPECT_FALSE(*fetched);
  EXPECT_EQ(cache.keys()->size(), 2u);
  src.text = "{\"keys\": []}";  // reachable again, but no usable key: also a failure
  src.fail = false;
  src.now += std::chrono::seconds(10);
  EXPECT_FALSE(cache.poll());
  src.now += std::chrono::seconds(20);
  fetched = cache.poll();
  ASSERT_TRUE(fetched);
  EXPECT_FALSE(*fetched);
  EXPECT_EQ(cache.keys()->size(), 2u);
  src.text = one.dump();
  src.now += std::chrono::seconds(30);
  fetched = cache.poll();
  ASSERT_TRUE(fetched && *fetched);
  EXPECT_EQ(cache.keys()->size(), 1u);
  EXPECT_FALSE(cache.poll());
  src.now += std::chrono::minutes(9);
  EXPECT_FALSE(cache.poll()) << "back to the periodic schedule";
  EXPECT_EQ(src.calls, 5);
}

TEST(JwksCache, BackgroundThreadServesWishes) {
  std::atomic<int> calls{0};
  JwksCache::Options o;
  o.fetch = [&]() -> Result<std::string> {
    ++calls;
    return json{{"keys", json::array({public_jwk(keys().ed, "one")})}}.dump();
  };
  o.min_gap = std::chrono::milliseconds(1);
  JwksCache cache(std::move(o));
  cache.start();
  for (int i = 0; i < 500 && !cache.keys(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(cache.keys(), nullptr) << "first fetch";
  cache.want_refresh();
  for (int i = 0; i < 500 && calls < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(calls, 2);
}

TEST(StaticTokens, MatchOnlyTheirOwnDigest) {
  const std::string a = "1mcp_tokenA", b = "1mcp_tokenB";
  TokenSet set({{"ci", sha256_hex(a)},
                {"bad-digest", "not hex"},
                {"laptop", sha256_hex(b)},
                {"upper", std::string(64, 'A')}});
  EXPECT_EQ(set.match(a), "ci");
  EXPECT_EQ(set.match(b), "laptop");
  EXPECT_EQ(set.match("1mcp_tokenC"), std::nullopt);
  EXPECT_EQ(set.match("1mcp_tokenA "), std::nullopt);
  EXPECT_EQ(set.match(sha256_hex(a)), std::nullopt) << "the digest itself is not the token";
  EXPECT_EQ(set.match(""), std::nullopt);
  EXPECT_EQ(TokenSet({{"empty", sha256_hex("")}}).match(""), std::nullopt)
      << "an empty token never matches, even the digest of the empty string";
  EXPECT_EQ(TokenSet({}).match(a), std::nullopt);
}

TEST(StaticTokens, GeneratedTokensAreRandomAndPrefixed) {
  auto t1 = generate_token(), t2 = generate_token();
  ASSERT_TRUE(t1 && t2);
  EXPECT_NE(*t1, *t2);
  for (const auto& t : {*t1, *t2}) {
    ASSERT_TRUE(t.starts_with(kTokenPrefix)) << t;
    auto bytes = base64url_decode(std::string_view(t).substr(kTokenPrefix.size()));
    ASSERT_TRUE(bytes) << t;
    EXPECT_EQ(bytes->size(), 32u);
  }
}

TEST(Base64url, StrictDecoding) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_FALSE(base64url_decode("Zg=="));
  EXPECT_FALSE(base64url_decode("Zh"));  // "f" with non-zero unused bits
  EXPECT_FALSE(base64url_decode("Z"));
  EXPECT_FALSE(base64url_decode("a+b/"));
  EXPECT_FALSE(base64url_decode("ab cd"));
}

}  // namespace
}  // namespace onemcp::auth
