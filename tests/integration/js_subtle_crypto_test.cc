// Integration tests of run_js's crypto.subtle (digests and HMAC on the host's libcrypto): the
// real 1mcp-js-worker driven through sandbox::Zygote, so every run is a fork of the zygote that
// initialised libcrypto, inside the jail, under the run's seccomp filter.
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "sandbox/executor.h"

namespace onemcp {
namespace {

using sandbox::Outcome;
using sandbox::RunOutput;
using namespace std::chrono_literals;

// Helpers every test's code starts with: hex of bytes, UTF-8 bytes of a string, and what a
// promise settles to (hex of an ArrayBuffer, a value as text, or the name of the error).
constexpr char kHelpers[] = R"js(
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = (s) => new TextEncoder().encode(s);
const settle = async (p) => {
  try {
    const v = await p;
    return v instanceof ArrayBuffer ? hex(v) : String(v);
  } catch (e) {
    return e.name;
  }
};
const subtle = crypto.subtle;
)js";

class JsSubtleCrypto : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto z = sandbox::Zygote::start({ONEMCP_JS_WORKER, {}, {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}});
    ASSERT_TRUE(z.ok()) << z.error().message;
    zygote_ = std::move(z.value()).release();
  }
  static void TearDownTestSuite() {
    delete zygote_;
    zygote_ = nullptr;
  }

  static RunOutput run(const std::string& body, uint64_t timeout_ms = 10000) {
    ipc::RunRequest req;
    req.code = std::string(kHelpers) + body;
    req.timeout_ms = timeout_ms;
    req.mem_mb = 256;
    req.stdout_bytes = 1u << 20;
    auto r = zygote_->run(req, "");
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok()) return {};
    EXPECT_FALSE(r->report.needs_transpile) << r->report.error_message.value_or("");
    return std::move(r.value());
  }

  // The stdout of a run that must end ok.
  static std::string out_of(const std::string& body) {
    RunOutput o = run(body);
    EXPECT_EQ(o.outcome, Outcome::ok) << "stderr: " << o.err;
    EXPECT_EQ(o.exit_code, 0);
    return o.out;
  }

  static sandbox::Zygote* zygote_;
};

sandbox::Zygote* JsSubtleCrypto::zygote_ = nullptr;

TEST_F(JsSubtleCrypto, DigestKnownVectors) {
  // FIPS 180-2 examples ("abc", the two-block message) and the empty message.
  std::string out = out_of(R"js(
for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) {
  for (const m of ['', 'abc', 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq']) {
    console.log(alg, m.length, hex(await subtle.digest(alg, utf8(m))));
  }
}
)js");
  EXPECT_EQ(out,
            "SHA-1 0 da39a3ee5e6b4b0d3255bfef95601890afd80709\n"
            "SHA-1 3 a9993e364706816aba3e25717850c26c9cd0d89d\n"
            "SHA-1 56 84983e441c3bd26ebaae4aa1f95129e5e54670f1\n"
            "SHA-256 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "SHA-256 3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
            "SHA-256 56 248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1\n"
            "SHA-384 0 "
            "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2"
            "f14898b95b\n"
            "SHA-384 3 "
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baec"
            "a134c825a7\n"
            "SHA-384 56 "
            "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b"
            "1fe3c8452b\n"
            "SHA-512 0 "
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318"
            "d2877eec2f63b931bd47417a81a538327af927da3e\n"
            "SHA-512 3 "
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c"
            "23a3feebbd454d4423643ce80e2a9ac94fa54ca49f\n"
            "SHA-512 56 "
            "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c33596fd15c13b1b07f9aa1d3b"
            "ea57789ca031ad85c7a71dd70354ec631238ca3445\n");
}

TEST_F(JsSubtleCrypto, DigestOfLargeInput) {
  // 100 000 bytes (i * 7 + 3) mod 256; the expected digests are Python hashlib's.
  std::string out = out_of(R"js(
const data = new Uint8Array(100000);
for (let i = 0; i < data.length; ++i) data[i] = (i * 7 + 3) & 255;
for (const alg of ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512']) console.log(hex(await subtle.digest(alg, data)));
)js");
  EXPECT_EQ(out,
            "386d00146341aa3dc6778b701e7eb165911587f5\n"
            "d96bab6a55ee326ba206dd4a85a6e95e14360d7fabbf448f03e689c24382b7d0\n"
            "155b0ba362098f2706edcca94912bb12cefee8ce211fc5f5f9f80cccdb397bc6962332c87e7ec03aa38279"
            "0eaaf1294c\n"
            "f1fb14527782d69f6cd1aa6129c5f1486e23c4fbf328139e4dc30d41f9d2ca2b1d874ee7a969f0f071b8ae"
            "46932f7c3e13458ce172800e15cae9b1a5b52c4cea\n");
}

TEST_F(JsSubtleCrypto, DigestTakesEveryAlgorithmAndBufferForm) {
  // Names match case-insensitively, as a string or {name}; the data is an ArrayBuffer or any view
  // (offsets honoured); the bytes are taken when digest() is called.
  std::string out = out_of(R"js(
const padded = utf8('xxabcxx');
const forms = {
  upper: subtle.digest('SHA-256', utf8('abc')),
  lower: subtle.digest('sha-256', utf8('abc')),
  object: subtle.digest({ name: 'Sha-256', extra: 1 }, utf8('abc')),
  arrayBuffer: subtle.digest('SHA-256', utf8('abc').buffer),
  subarray: subtle.digest('SHA-256', padded.subarray(2, 5)),
  dataView: subtle.digest('SHA-256', new DataView(padded.buffer, 2, 3)),
  int8: subtle.digest('SHA-256', Int8Array.from(utf8('abc'))),
};
const changed = utf8('abc');
forms.changedAfterCall = subtle.digest('SHA-256', changed);
changed[0] = 0;
for (const [name, p] of Object.entries(forms)) console.log(name, await settle(p));
const r = await subtle.digest('SHA-512', new Uint16Array(0));
console.log(r instanceof ArrayBuffer, r.byteLength);
)js");
  const std::string abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n";
  EXPECT_EQ(out, "upper " + abc + "lower " + abc + "object " + abc + "arrayBuffer " + abc +
                     "subarray " + abc + "dataView " + abc + "int8 " + abc + "changedAfterCall " +
                     abc + "true 64\n");
}

TEST_F(JsSubtleCrypto, HmacRfc4231Vectors) {
  // RFC 4231 test cases 1, 2 and 6 (a key longer than the hash's block), SHA-256 and SHA-512.
  std::string out = out_of(R"js(
const cases = [
  [new Uint8Array(20).fill(0x0b), 'Hi There'],
  [utf8('Jefe'), 'what do ya want for nothing?'],
  [new Uint8Array(131).fill(0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First'],
];
for (const [n, [key, data]] of cases.entries()) {
  for (const hash of ['SHA-256', { name: 'SHA-512' }]) {
    const k = await subtle.importKey('raw', key, { name: 'HMAC', hash }, false, ['sign']);
    console.log(n, k.algorithm.hash.name, hex(await subtle.sign('HMAC', k, utf8(data))));
  }
}
)js");
  EXPECT_EQ(out,
            "0 SHA-256 b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7\n"
            "0 SHA-512 "
            "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b27"
            "4eaea3f4e4be9d914eeb61f1702e696c203a126854\n"
            "1 SHA-256 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\n"
            "1 SHA-512 "
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f"
            "65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737\n"
            "2 SHA-256 60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54\n"
            "2 SHA-512 "
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2"
            "215d6a1e5295e64f73f63f0aec8b915a985d786598\n");
}

TEST_F(JsSubtleCrypto, HmacVerify) {
  std::string out = out_of(R"js(
const k = await subtle.importKey('raw', new Uint8Array(20).fill(0x0b), { name: 'HMAC', hash: 'SHA-256' },
                                 false, ['sign', 'verify']);
const data = utf8('Hi There');
const sig = new Uint8Array(await subtle.sign('HMAC', k, data));
const tampered = sig.slice();
tampered[31] ^= 1;
const longer = new Uint8Array(33);
longer.set(sig);
const checks = {
  right: subtle.verify('HMAC', k, sig, data),
  asArrayBuffer: subtle.verify({ name: 'hmac' }, k, sig.buffer, new DataView(data.buffer)),
  tampered: subtle.verify('HMAC', k, tampered, data),
  truncated: subtle.verify('HMAC', k, sig.subarray(0, 31), data),
  longer: subtle.verify('HMAC', k, longer, data),
  empty: subtle.verify('HMAC', k, new Uint8Array(0), data),
  otherData: subtle.verify('HMAC', k, sig, utf8('Hi There!')),
};
for (const [name, p] of Object.entries(checks)) console.log(name, await settle(p));
)js");
  EXPECT_EQ(
      out,
      "right true\nasArrayBuffer true\ntampered false\ntruncated false\nlonger false\nempty false\n"
      "otherData false\n");
}

TEST_F(JsSubtleCrypto, KeysAreCryptoKeysWithPrivateBytes) {
  std::string out = out_of(R"js(
const k = await subtle.importKey('raw', utf8('Jefe'), { name: 'hmac', hash: { name: 'sha-256' } }, true,
                                 ['verify', 'sign', 'sign']);
console.log(k.type, k.extractable, JSON.stringify(k.algorithm), JSON.stringify(k.usages));
console.log(k instanceof CryptoKey, Object.prototype.toString.call(k), Reflect.ownKeys(k).length,
            JSON.stringify(k), k.algorithm === k.algorithm, subtle instanceof SubtleCrypto);
console.log(k);
for (const f of [() => new CryptoKey(), () => new SubtleCrypto(), () => CryptoKey.prototype.type]) {
  try { f(); } catch (e) { console.log(e.name); }
}
// What the script can change of a key changes nothing.
const v = await subtle.importKey('raw', utf8('Jefe'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
v.usages.push('sign');
v.algorithm.name = 'Other';
console.log(await settle(subtle.sign('HMAC', v, utf8('x'))));
)js");
  EXPECT_EQ(out,
            "secret true {\"name\":\"HMAC\",\"hash\":{\"name\":\"SHA-256\"},\"length\":32} "
            "[\"sign\",\"verify\"]\n"
            "true [object CryptoKey] 0 {} true true\n"
            "CryptoKey {\n"
            "  type: 'secret',\n"
            "  extractable: true,\n"
            "  algorithm: { name: 'HMAC', hash: [Object], length: 32 },\n"
            "  usages: [ 'sign', 'verify' ]\n"
            "}\n"
            "TypeError\nTypeError\nTypeError\n"
            "InvalidAccessError\n");
}

TEST_F(JsSubtleCrypto, ExportKeyRoundTripAndGenerateKey) {
  std::string out = out_of(R"js(
const raw = crypto.getRandomValues(new Uint8Array(48));
const original = hex(raw);
const k = await subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-384' }, true, ['sign']);
raw[0] ^= 1;  // the key has its own copy
const e1 = await subtle.exportKey('raw', k);
new Uint8Array(e1).fill(0);  // and so has every export
const e2 = await subtle.exportKey('raw', k);
console.log(e2 instanceof ArrayBuffer, hex(e2) === original, e1 !== e2);
const k2 = await subtle.importKey('raw', e2, { name: 'HMAC', hash: 'SHA-384' }, false, ['sign']);
console.log(hex(await subtle.sign('HMAC', k, utf8('m'))) === hex(await subtle.sign('HMAC', k2, utf8('m'))));
// Declared lengths: at most 7 bits short of the key's.
for (const length of [256, 249, 248, 257]) {
  console.log(length, await settle(subtle.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256', length },
                                                     false, ['sign']).then((key) => key.algorithm.length)));
}
// Generated keys: the hash's block size by default, or the length asked for.
for (const algorithm of [{ name: 'HMAC', hash: 'SHA-1' }, { name: 'HMAC', hash: 'SHA-512' },
                         { name: 'HMAC', hash: 'SHA-256', length: 100 }]) {
  const g = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const sig = await subtle.sign('HMAC', g, utf8('m'));
  console.log(g.algorithm.length, (await subtle.exportKey('raw', g)).byteLength,
              await subtle.verify('HMAC', g, sig, utf8('m')));
}
const a = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
const b = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
console.log(hex(await subtle.exportKey('raw', a)) !== hex(await subtle.exportKey('raw', b)));
)js");
  EXPECT_EQ(out,
            "true true true\n"
            "true\n"
            "256 256\n249 249\n248 DataError\n257 DataError\n"
            "512 64 true\n1024 128 true\n100 13 true\n"
            "true\n");
}

TEST_F(JsSubtleCrypto, KeyUseIsChecked) {
  std::string out = out_of(R"js(
const hmac = { name: 'HMAC', hash: 'SHA-256' };
const key = utf8('0123456789abcdef');
const hidden = await subtle.importKey('raw', key, hmac, false, ['sign', 'verify']);
const verifyOnly = await subtle.importKey('raw', key, hmac, true, ['verify']);
const signOnly = await subtle.importKey('raw', key, hmac, true, ['sign']);
const sig = await subtle.sign('HMAC', signOnly, utf8('m'));
const checks = {
  exportNonExtractable: subtle.exportKey('raw', hidden),
  signWithVerifyOnly: subtle.sign('HMAC', verifyOnly, utf8('m')),
  verifyWithSignOnly: subtle.verify('HMAC', signOnly, sig, utf8('m')),
  verifyWithVerifyOnly: subtle.verify('HMAC', verifyOnly, sig, utf8('m')),
  importForEncrypt: subtle.importKey('raw', key, hmac, false, ['sign', 'encrypt']),
  importWithoutUsages: subtle.importKey('raw', key, hmac, false, []),
  generateWithoutUsages: subtle.generateKey(hmac, false, []),
  generateZeroLength: subtle.generateKey({ ...hmac, length: 0 }, false, ['sign']),
  importEmptyKey: subtle.importKey('raw', new Uint8Array(0), hmac, false, ['sign']),
};
for (const [name, p] of Object.entries(checks)) {
  let message = '';
  try { await p; } catch (e) { message = e instanceof DOMException ? ' (DOMException)' : ''; }
  console.log(name, await settle(p) + message);
}
)js");
  EXPECT_EQ(out,
            "exportNonExtractable InvalidAccessError (DOMException)\n"
            "signWithVerifyOnly InvalidAccessError (DOMException)\n"
            "verifyWithSignOnly InvalidAccessError (DOMException)\n"
            "verifyWithVerifyOnly true\n"
            "importForEncrypt SyntaxError (DOMException)\n"
            "importWithoutUsages SyntaxError (DOMException)\n"
            "generateWithoutUsages SyntaxError (DOMException)\n"
            "generateZeroLength OperationError (DOMException)\n"
            "importEmptyKey DataError (DOMException)\n");
}

TEST_F(JsSubtleCrypto, UnsupportedAlgorithmsAndFormatsRejectNotSupported) {
  std::string out = out_of(R"js(
const hmac = { name: 'HMAC', hash: 'SHA-256' };
const k = await subtle.importKey('raw', utf8('key'), hmac, true, ['sign']);
const data = utf8('m');
const calls = {
  md5: () => subtle.digest('MD5', data),
  sha224: () => subtle.digest('SHA-224', data),
  noHyphen: () => subtle.digest({ name: 'SHA256' }, data),
  hmacDigest: () => subtle.digest('HMAC', data),
  number: () => subtle.digest(256, data),
  hmacWithMd5: () => subtle.importKey('raw', data, { name: 'HMAC', hash: 'MD5' }, false, ['sign']),
  importAes: () => subtle.importKey('raw', new Uint8Array(16), { name: 'AES-GCM' }, false, ['encrypt']),
  importJwk: () => subtle.importKey('jwk', { kty: 'oct', k: 'a2V5' }, hmac, false, ['sign']),
  importSpki: () => subtle.importKey('spki', data, hmac, false, ['sign']),
  exportJwk: () => subtle.exportKey('jwk', k),
  signEcdsa: () => subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, k, data),
  encrypt: () => subtle.encrypt({ name: 'AES-GCM', iv: data }, k, data),
  decrypt: () => subtle.decrypt({ name: 'AES-GCM', iv: data }, k, data),
  generateAes: () => subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']),
  deriveBits: () => subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256' }, k, 8),
  deriveKey: () => subtle.deriveKey({ name: 'HKDF' }, k, hmac, true, ['sign']),
  wrapKey: () => subtle.wrapKey('raw', k, k, { name: 'AES-KW' }),
  unwrapKey: () => subtle.unwrapKey('raw', data, k, { name: 'AES-KW' }, hmac, true, ['sign']),
};
for (const [name, f] of Object.entries(calls)) {
  const p = f();
  let dom = false;
  try { await p; } catch (e) { dom = e instanceof DOMException && e instanceof Error; }
  console.log(name, await settle(p), dom);
}
try { await subtle.digest('MD5', data); } catch (e) { console.log(e.message); }
)js");
  std::string expected;
  for (const char* name :
       {"md5", "sha224", "noHyphen", "hmacDigest", "number", "hmacWithMd5", "importAes",
        "importJwk", "importSpki", "exportJwk", "signEcdsa", "encrypt", "decrypt", "generateAes",
        "deriveBits", "deriveKey", "wrapKey", "unwrapKey"}) {
    expected += std::string(name) + " NotSupportedError true\n";
  }
  EXPECT_EQ(out, expected + "Unrecognized algorithm name\n");
}

TEST_F(JsSubtleCrypto, BadArgumentsRejectAndNeverThrow) {
  // Every call returns a promise, even with the wrong arguments, and the run goes on.
  std::string out = out_of(R"js(
const u8 = new Uint8Array([1, 2, 3]);
const hmac = { name: 'HMAC', hash: 'SHA-256' };
const k = await subtle.importKey('raw', u8, hmac, true, ['sign', 'verify']);
const calls = {
  noArguments: () => subtle.digest(),
  oneArgument: () => subtle.digest('SHA-256'),
  stringData: () => subtle.digest('SHA-256', 'abc'),
  arrayData: () => subtle.digest('SHA-256', [1, 2, 3]),
  nullData: () => subtle.digest('SHA-256', null),
  proxyData: () => subtle.digest('SHA-256', new Proxy(new Uint8Array(4), {})),
  fakeView: () => subtle.digest('SHA-256', Object.create(Uint8Array.prototype)),
  symbolAlgorithm: () => subtle.digest(Symbol('x'), u8),
  namelessAlgorithm: () => subtle.digest({}, u8),
  nameGetterThrows: () => subtle.digest({ get name() { throw new RangeError('boom'); } }, u8),
  notThisSubtle: () => subtle.digest.call({}, 'SHA-256', u8),
  signWithObject: () => subtle.sign('HMAC', {}, u8),
  signWithFakeKey: () => subtle.sign('HMAC', Object.create(CryptoKey.prototype), u8),
  signNoData: () => subtle.sign('HMAC', k),
  verifyStringSignature: () => subtle.verify('HMAC', k, 'sig', u8),
  badFormat: () => subtle.importKey('pem', u8, hmac, false, ['sign']),
  stringKeyData: () => subtle.importKey('raw', 'secret', hmac, false, ['sign']),
  jwkAsBytes: () => subtle.importKey('jwk', u8, hmac, false, ['sign']),
  usagesString: () => subtle.importKey('raw', u8, hmac, false, 'sign'),
  usageUnknown: () => subtle.importKey('raw', u8, hmac, false, ['sign', 'fly']),
  usagesIteratorThrows: () => subtle.importKey('raw', u8, hmac, false, { [Symbol.iterator]() { throw new EvalError('it'); } }),
  noHash: () => subtle.importKey('raw', u8, { name: 'HMAC' }, false, ['sign']),
  hashGetterThrows: () => subtle.importKey('raw', u8, { name: 'HMAC', get hash() { throw new URIError('h'); } }, false, ['sign']),
  negativeLength: () => subtle.importKey('raw', u8, { ...hmac, length: -1 }, false, ['sign']),
  hugeLength: () => subtle.importKey('raw', u8, { ...hmac, length: 2 ** 32 }, false, ['sign']),
  nanLength: () => subtle.importKey('raw', u8, { ...hmac, length: NaN }, false, ['sign']),
  bigintLength: () => subtle.importKey('raw', u8, { ...hmac, length: 8n }, false, ['sign']),
  maxLength: () => subtle.importKey('raw', u8, { ...hmac, length: 2 ** 32 - 1 }, false, ['sign']),
  exportBadFormat: () => subtle.exportKey('pem', k),
  exportObject: () => subtle.exportKey('raw', {}),
  generateHugeKey: () => subtle.generateKey({ ...hmac, length: 2 ** 32 - 1 }, true, ['sign']),
};
for (const [name, f] of Object.entries(calls)) {
  let p;
  try { p = f(); } catch (e) { console.log(name, 'threw', e.name); continue; }
  console.log(name, p instanceof Promise, await settle(p));
}
console.log(hex(await subtle.sign('HMAC', k, u8)).length);
)js");
  EXPECT_EQ(out,
            "noArguments true TypeError\n"
            "oneArgument true TypeError\n"
            "stringData true TypeError\n"
            "arrayData true TypeError\n"
            "nullData true TypeError\n"
            "proxyData true TypeError\n"
            "fakeView true TypeError\n"
            "symbolAlgorithm true TypeError\n"
            "namelessAlgorithm true TypeError\n"
            "nameGetterThrows true RangeError\n"
            "notThisSubtle true TypeError\n"
            "signWithObject true TypeError\n"
            "signWithFakeKey true TypeError\n"
            "signNoData true TypeError\n"
            "verifyStringSignature true TypeError\n"
            "badFormat true TypeError\n"
            "stringKeyData true TypeError\n"
            "jwkAsBytes true TypeError\n"
            "usagesString true TypeError\n"
            "usageUnknown true TypeError\n"
            "usagesIteratorThrows true EvalError\n"
            "noHash true TypeError\n"
            "hashGetterThrows true URIError\n"
            "negativeLength true TypeError\n"
            "hugeLength true TypeError\n"
            "nanLength true TypeError\n"
            "bigintLength true TypeError\n"
            "maxLength true DataError\n"
            "exportBadFormat true TypeError\n"
            "exportObject true TypeError\n"
            "generateHugeKey true InternalError\n"
            "64\n");
}

// /proc/<pid>/status fields of every process below `root`.
std::vector<std::string> statuses_below(pid_t root) {
  namespace fs = std::filesystem;
  auto parent_of = [](const std::string& pid) -> std::string {
    std::ifstream in("/proc/" + pid + "/stat");
    std::string line;
    std::getline(in, line);
    auto close = line.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return "";
    std::istringstream rest(line.substr(close + 2));
    std::string state, ppid;
    rest >> state >> ppid;
    return ppid;
  };
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string p = pid;
    bool below = false;
    for (int depth = 0; depth < 16 && !p.empty() && p != "0" && p != "1"; ++depth) {
      p = parent_of(p);
      if (p == std::to_string(root)) below = true;
    }
    if (!below) continue;
    std::ifstream in("/proc/" + pid + "/status");
    std::stringstream text;
    text << in.rdbuf();
    out.push_back(text.str());
  }
  return out;
}

TEST_F(JsSubtleCrypto, RunsUnderSeccompAfterCrypto) {
  // The run hashes and signs (libcrypto initialised in the zygote needs nothing more of the
  // kernel), then waits while this test looks for it: a process below the zygote with its
  // seccomp filter on. The run must still end ok.
  std::optional<RunOutput> out;
  std::thread runner([&] {
    out = run(R"js(
const k = await subtle.generateKey({ name: 'HMAC', hash: 'SHA-512' }, false, ['sign', 'verify']);
const sig = await subtle.sign('HMAC', k, utf8('m'));
console.log(hex(await subtle.digest('SHA-384', utf8('abc'))).slice(0, 8), await subtle.verify('HMAC', k, sig, utf8('m')));
await new Promise((resolve) => setTimeout(resolve, 3000));
console.log('done');
)js");
  });
  bool filtered = false;
  for (auto until = std::chrono::steady_clock::now() + 10s;
       !filtered && std::chrono::steady_clock::now() < until;) {
    for (const std::string& status : statuses_below(zygote_->pid())) {
      if (status.find("\nSeccomp:\t2\n") != std::string::npos) filtered = true;
    }
    std::this_thread::sleep_for(20ms);
  }
  runner.join();
  EXPECT_TRUE(filtered) << "no process of the run with a seccomp filter below the zygote";
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->outcome, Outcome::ok) << "stderr: " << out->err;
  EXPECT_EQ(out->out, "cb00753f true\ndone\n");
}

}  // namespace
}  // namespace onemcp
