// Capsule manifests: canonical JSON and ids (golden values computed independently with Python's
// json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) and hashlib), strict
// parsing, name validation, and the crypto wrappers.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "capsule/crypto.h"
#include "capsule/manifest.h"

namespace onemcp::capsule {
namespace {

using nlohmann::json;

constexpr const char* kCode = "console.log(1)";
constexpr const char* kGoldenCanonical =
    R"({"entry":{"argv":["main.js","--x"],"cwd":"/work","env":{"A":"1","B":"2"}},"language":"js",)"
    R"("layers":[{"file":"code.js","kind":"code","name":"code",)"
    R"("sha256":"0a286891c11c056e1ab5bfc25bf5d6b2f5b06d38eac10944f678fd8a2e70c393","size":14}],)"
    R"("policy":{"limits":{"memMb":64,"timeoutMs":1000},"network":{"allowedDomains":["example.com"]}},)"
    R"("runtime":{"id":"quickjs","version":"2021-03-27"},"version":1})";
constexpr const char* kGoldenHash =
    "a9e23032420ce7288a1b2a4f659a2de857308effbb9cce5c7552b407962cbc95";

Manifest sample() {
  Manifest m;
  m.language = "js";
  m.runtime = {"quickjs", "2021-03-27"};
  m.entry.argv = {"main.js", "--x"};
  m.entry.env = {{"B", "2"}, {"A", "1"}};
  m.entry.cwd = "/work";
  m.layers.push_back({"code", "code", "code.js", sha256_hex(kCode), 14});
  m.policy = json::parse(
      R"({"network":{"allowedDomains":["example.com"]},"limits":{"timeoutMs":1000,"memMb":64}})");
  m.created_at = "2025-01-02T03:04:05Z";
  m.signature = {"ed25519", std::string(64, 'a'), std::string(128, 'b')};
  return m;
}

std::string hash_of(const Manifest& m) {
  auto h = capsule_hash(m);
  EXPECT_TRUE(h.ok()) << h.error().message;
  return h.ok() ? *h : "";
}

TEST(CapsuleManifest, CanonicalJsonMatchesTheDocumentedRule) {
  auto c = canonical_json(sample());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*c, kGoldenCanonical);
  EXPECT_EQ(hash_of(sample()), kGoldenHash);
}

TEST(CapsuleManifest, CanonicalJsonKeepsUtf8AndEscapesControlCharacters) {
  Manifest m = sample();
  m.entry.argv = {"é\n\x01\"\\ü🙂"};
  auto c = canonical_json(m);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->find(R"(["é\n\u0001\"\\ü🙂"])"), std::string::npos) << *c;
  EXPECT_EQ(hash_of(m), "daf1f3b25e9d2044764d4bf3e8c730391f2da651bbcdadea2c4bd0902ac613ec");
}

TEST(CapsuleManifest, InvalidUtf8IsAnErrorNotReplaced) {
  Manifest m = sample();
  m.entry.env["X"] = "\xff\xfe";
  auto c = canonical_json(m);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("UTF-8"), std::string::npos);
}

TEST(CapsuleManifest, HashIgnoresSignatureAndCreatedAt) {
  Manifest m = sample();
  m.created_at = "2030-12-31T23:59:59.5+01:00";
  m.signature = {"ed25519", std::string(64, 'c'), std::string(128, 'd')};
  EXPECT_EQ(hash_of(m), kGoldenHash);
}

TEST(CapsuleManifest, EveryOtherFieldChangesTheHash) {
  std::vector<std::function<void(Manifest&)>> edits = {
      [](Manifest& m) { m.language = "py"; },
      [](Manifest& m) { m.runtime.id = "cpython"; },
      [](Manifest& m) { m.runtime.version = "2021-03-28"; },
      [](Manifest& m) { m.entry.argv.push_back("y"); },
      [](Manifest& m) { std::swap(m.entry.argv[0], m.entry.argv[1]); },
      [](Manifest& m) { m.entry.env["A"] = "0"; },
      [](Manifest& m) { m.entry.cwd = "/"; },
      [](Manifest& m) { m.layers[0].name = "main"; },
      [](Manifest& m) { m.layers[0].kind = "deps"; },
      [](Manifest& m) { m.layers[0].file = "main.js"; },
      [](Manifest& m) { m.layers[0].sha256[0] = 'f'; },
      [](Manifest& m) { m.layers[0].size = 15; },
      [](Manifest& m) {
        m.layers.push_back({"deps", "deps", "deps.tar", std::string(64, '0'), 0});
      },
      [](Manifest& m) { m.policy["limits"]["timeoutMs"] = 999; },
  };
  std::set<std::string> seen{kGoldenHash};
  for (size_t i = 0; i < edits.size(); ++i) {
    Manifest m = sample();
    edits[i](m);
    EXPECT_TRUE(seen.insert(hash_of(m)).second) << "edit " << i << " left the hash unchanged";
  }
}

TEST(CapsuleManifest, JsonRoundTripAndKeyOrderIndependence) {
  Manifest m = sample();
  json j = to_json(m);
  auto back = manifest_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, m);
  // The same manifest written with keys in another order and with whitespace.
  std::string text = R"({ "signature": {"value": ")" + std::string(128, 'b') +
                     R"(", "publicKey": ")" + std::string(64, 'a') + R"(", "alg": "ed25519"},
    "policy": {"limits": {"memMb": 64, "timeoutMs": 1000}, "network": {"allowedDomains": ["example.com"]}},
    "layers": [{"size": 14, "sha256": ")" +
                     sha256_hex(kCode) + R"(", "name": "code", "kind": "code", "file": "code.js"}],
    "entry": {"cwd": "/work", "env": {"B": "2", "A": "1"}, "argv": ["main.js", "--x"]},
    "createdAt": "2025-01-02T03:04:05Z", "runtime": {"version": "2021-03-27", "id": "quickjs"},
    "language": "js", "version": 1 })";
  auto parsed = parse_manifest(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(*parsed, m);
  EXPECT_EQ(hash_of(*parsed), kGoldenHash);
}

TEST(CapsuleManifest, StrictParsingNamesTheField) {
  struct Case {
    std::function<void(json&)> edit;
    std::string expect;
  };
  std::vector<Case> cases = {
      {[](json& j) { j["extra"] = 1; }, "extra: unknown field"},
      {[](json& j) { j["layers"][0]["mode"] = "x"; }, "layers[0].mode: unknown field"},
      {[](json& j) { j.erase("entry"); }, "entry: missing"},
      {[](json& j) { j["layers"][0]["size"] = "14"; }, "layers[0].size"},
      {[](json& j) { j["layers"][0]["size"] = -1; }, "layers[0].size"},
      {[](json& j) { j["version"] = 2; }, "version"},
      {[](json& j) { j["version"] = 1.0; }, "version"},
      {[](json& j) { j["language"] = "rb"; }, "language"},
      {[](json& j) { j["policy"]["limits"]["memMb"] = 1.5; }, "policy"},
      {[](json& j) { j["policy"] = json::array(); }, "policy"},
      {[](json& j) { j["entry"]["env"]["A"] = 1; }, "entry.env.A"},
      {[](json& j) { j["entry"]["argv"] = "main.js"; }, "entry.argv"},
      {[](json& j) { j["layers"][0]["file"] = "../code.js"; }, "layers[0].file"},
      {[](json& j) { j["layers"][0]["file"] = "a/b.js"; }, "layers[0].file"},
      {[](json& j) { j["layers"][0]["file"] = ".hidden"; }, "layers[0].file"},
      {[](json& j) { j["layers"][0]["file"] = "manifest.json"; }, "layers[0].file"},
      {[](json& j) { j["layers"][0]["kind"] = "blob"; }, "layers[0].kind"},
      {[](json& j) { j["layers"][0]["sha256"] = std::string(64, 'A'); }, "layers[0].sha256"},
      {[](json& j) { j["layers"].push_back(j["layers"][0]); }, "layers[1].name: duplicate"},
      {[](json& j) {
         j["layers"].push_back(j["layers"][0]);
         j["layers"][1]["name"] = "other";
       },
       "layers[1].file: duplicate"},
      {[](json& j) { j["signature"]["alg"] = "rsa"; }, "signature.alg"},
      {[](json& j) { j["signature"]["value"] = "00"; }, "signature.value"},
      {[](json& j) { j["signature"]["publicKey"] = std::string(64, 'G'); }, "signature.publicKey"},
      {[](json& j) { j["createdAt"] = "yesterday"; }, "createdAt"},
      {[](json& j) { j = json::array(); }, "expected an object"},
  };
  for (const auto& c : cases) {
    json j = to_json(sample());
    c.edit(j);
    auto r = manifest_from_json(j);
    ASSERT_FALSE(r.ok()) << "accepted, expected an error about " << c.expect;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(parse_manifest("{not json").ok());
  EXPECT_FALSE(parse_manifest(std::string(100, '[') + std::string(100, ']')).ok());
}

TEST(CapsuleManifest, CapsuleHashValidation) {
  EXPECT_TRUE(is_capsule_hash(kGoldenHash));
  EXPECT_TRUE(is_capsule_hash(std::string(64, '0')));
  EXPECT_FALSE(is_capsule_hash(""));
  EXPECT_FALSE(is_capsule_hash(std::string(63, 'a')));
  EXPECT_FALSE(is_capsule_hash(std::string(65, 'a')));
  EXPECT_FALSE(is_capsule_hash(std::string(64, 'A')));  // lowercase only: one name per capsule
  EXPECT_FALSE(is_capsule_hash(std::string(63, 'a') + "g"));
  EXPECT_FALSE(is_capsule_hash(std::string(62, 'a') + "/."));
  EXPECT_FALSE(is_capsule_hash(std::string(63, 'a') + '\0'));
  EXPECT_FALSE(is_capsule_hash(".."));
}

TEST(CapsuleManifest, LayerFileNames) {
  for (const char* ok : {"code.js", "main.py", "deps.tar", "a", "A-b_c.9"})
    EXPECT_TRUE(is_layer_file_name(ok)) << ok;
  for (std::string bad :
       {"", ".", "..", ".x", "a/b", "/a", "a\\b", "manifest.json", "a b", "é.js", "a\n"}) {
    EXPECT_FALSE(is_layer_file_name(bad)) << bad;
  }
  EXPECT_TRUE(is_layer_file_name(std::string(128, 'a')));
  EXPECT_FALSE(is_layer_file_name(std::string(129, 'a')));
}

TEST(CapsuleManifest, Rfc3339) {
  for (const char* ok :
       {"2025-01-02T03:04:05Z", "2025-01-02T03:04:05.123Z", "2025-01-02t03:04:05+05:30"}) {
    EXPECT_TRUE(is_rfc3339(ok)) << ok;
  }
  for (const char* bad :
       {"", "2025-01-02", "2025-01-02 03:04:05Z", "2025-01-02T03:04:05", "2025-01-02T03:04:05.Z",
        "2025-01-02T03:04:05+0530", "2025-1-02T03:04:05Z", "2025-01-02T03:04:05Zjunk"}) {
    EXPECT_FALSE(is_rfc3339(bad)) << bad;
  }
  // At most 64 characters (types/capsule.manifest.schema.json).
  EXPECT_TRUE(is_rfc3339("2025-01-02T03:04:05." + std::string(43, '1') + "Z"));
  EXPECT_FALSE(is_rfc3339("2025-01-02T03:04:05." + std::string(44, '1') + "Z"));
}

TEST(CapsuleManifest, SignedMessageIsPrefixAndRawDigest) {
  std::string msg = signed_message(kGoldenHash);
  ASSERT_EQ(msg.size(), 16u + 32u);
  EXPECT_EQ(msg.substr(0, 16), std::string("1mcp-capsule-v1\0", 16));
  EXPECT_EQ(to_hex(msg.substr(16)), kGoldenHash);
}

TEST(CapsuleCrypto, Sha256AndHex) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(std::string("\x00\x7f\xff", 3)), "007fff");
  EXPECT_EQ(from_hex("007fff"), std::string("\x00\x7f\xff", 3));
  EXPECT_FALSE(from_hex("0").has_value());
  EXPECT_FALSE(from_hex("FF").has_value());
  EXPECT_FALSE(from_hex("zz").has_value());
}

TEST(CapsuleCrypto, Ed25519SignVerify) {
  Seed seed{};
  seed[0] = 1;
  SigningKey a = SigningKey::from_seed(seed);
  SigningKey b = SigningKey::from_seed(seed);
  EXPECT_EQ(a.public_key(), b.public_key());
  EXPECT_EQ(a.seed(), seed);
  std::string sig = a.sign("message");
  EXPECT_EQ(sig, b.sign("message"));  // Ed25519 is deterministic
  EXPECT_TRUE(verify_signature(a.public_key(), "message", sig));
  EXPECT_FALSE(verify_signature(a.public_key(), "messagf", sig));
  std::string flipped = sig;
  flipped[10] ^= 1;
  EXPECT_FALSE(verify_signature(a.public_key(), "message", flipped));
  EXPECT_FALSE(verify_signature(a.public_key(), "message", sig.substr(1)));
  SigningKey other = SigningKey::generate();
  EXPECT_NE(other.public_key(), a.public_key());
  EXPECT_FALSE(verify_signature(other.public_key(), "message", sig));
  auto pk = public_key_from_hex(public_key_hex(a.public_key()));
  ASSERT_TRUE(pk.has_value());
  EXPECT_EQ(*pk, a.public_key());
}

}  // namespace
}  // namespace onemcp::capsule
