#include "runtimes/js/js_runtime.h"

#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <new>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/utf8.h"
#include "runtimes/js/arena.h"
#include "runtimes/js/fs_host.h"
#include "runtimes/js/host_call.h"
#include "runtimes/js/web_crypto.h"

namespace onemcp::js {
namespace {

constexpr char kFileName[] = "<run_js>";
constexpr char kDepsFileName[] = "<npm dependencies>";
constexpr char kImportRefused[] =
    "import is not supported: npm dependencies are declared with npm.dependencies";
constexpr int64_t kBackstopGraceNs = 100'000'000;  // the supervisor kills first; this is a backup
constexpr char kNoNetwork[] = "network access is not available";
constexpr char kBrokerGone[] = "the network broker closed the connection";
constexpr char kBrokerGarbled[] = "invalid reply from the network broker";

const char kPrelude[] =
#include "prelude.inc"
    ;

int64_t mono_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Writes everything or gives up: the run's stdout/stderr are blocking pipes to the supervisor.
void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) _exit(1);  // nobody is listening any more: leave quietly
    if (n <= 0) return;
    s.remove_prefix(size_t(n));
  }
}

// QuickJS encodes lone surrogates as 3-byte sequences (ED A0..BF xx), which are not UTF-8.
// Replace each with U+FFFD, as Node does when it writes a string.
std::string to_utf8(std::string_view in) {
  size_t first = in.find('\xED');
  if (first == std::string_view::npos) return std::string(in);  // the common case: one copy
  std::string out;
  out.reserve(in.size());
  out.append(in.substr(0, first));
  for (size_t i = first; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == 0xED && i + 2 < in.size() && static_cast<unsigned char>(in[i + 1]) >= 0xA0) {
      out += "\xEF\xBF\xBD";
      i += 2;
    } else {
      out += char(c);
    }
  }
  return out;
}

// JS value -> UTF-8. False on a pending JS exception.
bool js_to_utf8(JSContext* ctx, JSValueConst v, std::string* out) {
  size_t len = 0;
  const char* s = JS_ToCStringLen(ctx, &len, v);
  if (!s) return false;
  *out = to_utf8(std::string_view(s, len));
  JS_FreeCString(ctx, s);
  return true;
}

// WHATWG UTF-8 decode: every maximal invalid subsequence becomes one U+FFFD. Returns false on
// invalid input when `fatal`.
bool decode_utf8(std::string_view in, bool fatal, std::string* out) {
  out->clear();
  out->reserve(in.size());
  int needed = 0, seen = 0;
  unsigned lower = 0x80, upper = 0xBF;
  size_t start = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned b = static_cast<unsigned char>(in[i]);
    if (needed == 0) {
      start = i;
      if (b <= 0x7F) {  // a run of ASCII, appended at once
        size_t end = i + 1;
        while (end < in.size() && static_cast<unsigned char>(in[end]) <= 0x7F) ++end;
        out->append(in.substr(i, end - i));
        i = end - 1;
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower = 0xA0;
        if (b == 0xED) upper = 0x9F;
        needed = 2;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower = 0x90;
        if (b == 0xF4) upper = 0x8F;
        needed = 3;
      } else {
        if (fatal) return false;
        *out += "\xEF\xBF\xBD";
      }
      continue;
    }
    if (b < lower || b > upper) {
      if (fatal) return false;
      needed = seen = 0;
      lower = 0x80;
      upper = 0xBF;
      *out += "\xEF\xBF\xBD";
      --i;  // reprocess this byte as the start of a sequence
      continue;
    }
    lower = 0x80;
    upper = 0xBF;
    if (++seen == needed) {
      out->append(in.substr(start, i - start + 1));
      needed = seen = 0;
    }
  }
  if (needed != 0) {
    if (fatal) return false;
    *out += "\xEF\xBF\xBD";
  }
  return true;
}

JSValue new_string(JSContext* ctx, std::string_view s) { return JS_NewStringLen(ctx, s.data(), s.size()); }

// Layout of JSPromiseData in the pinned QuickJS 2021-03-27 quickjs.c (not exported by quickjs.h).
// Read only, so inspect can print "Promise { 1 }" / "Promise { <pending> }" like Node.
struct PromiseDataMirror {
  int state;  // 0 pending, 1 fulfilled, 2 rejected
  struct {
    void* prev;
    void* next;
  } reactions[2];
  int is_handled;
  JSValue result;
};

// ---- host functions (the prelude's `host` object), each guarded<> (host_call.h).

JSValue host_write(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  int fd = 0;
  if (JS_ToInt32(ctx, &fd, argv[0])) return JS_EXCEPTION;
  if (fd != 1 && fd != 2) return JS_ThrowRangeError(ctx, "write: bad fd");
  std::string text;
  if (!js_to_utf8(ctx, argv[1], &text)) return JS_EXCEPTION;
  write_all(fd, text);  // one write(2) per call in practice: nothing is buffered in-process
  return JS_UNDEFINED;
}

JSValue host_read_stdin(JSContext* ctx, JSValueConst, int, JSValueConst*) {
  std::string raw;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    raw.append(buf, size_t(n));
  }
  std::string text;
  decode_utf8(raw, false, &text);
  return new_string(ctx, text);
}

JSValue host_exit(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  int code = 0;
  if (JS_ToInt32(ctx, &code, argv[0])) return JS_EXCEPTION;
  JsRuntime::instance()->exit_now(code);
}

JSValue host_now(JSContext* ctx, JSValueConst, int, JSValueConst*) {
  return JS_NewFloat64(ctx, double(mono_ns()) / 1e6);
}

// crypto.getRandomValues and crypto.randomUUID: bytes from the kernel's CSPRNG.
JSValue host_random_bytes(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  uint32_t n = 0;
  if (JS_ToUint32(ctx, &n, argv[0])) return JS_EXCEPTION;
  if (n > 65536) return JS_ThrowRangeError(ctx, "randomBytes: at most 65536 bytes");
  std::vector<uint8_t> bytes(n);
  for (size_t got = 0; got < n;) {
    ssize_t r = ::getrandom(bytes.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return JS_ThrowInternalError(ctx, "no random bytes from the kernel");
    got += size_t(r);
  }
  return JS_NewArrayBufferCopy(ctx, bytes.data(), n);
}

JSValue run_microtask(JSContext* ctx, int, JSValueConst* argv) {
  return JS_Call(ctx, argv[0], JS_UNDEFINED, 0, nullptr);
}

JSValue host_enqueue_job(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  if (!JS_IsFunction(ctx, argv[0])) return JS_ThrowTypeError(ctx, "not a function");
  if (JS_EnqueueJob(ctx, run_microtask, 1, argv) < 0) return JS_EXCEPTION;
  return JS_UNDEFINED;
}

JSValue host_is_error(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  return JS_NewBool(ctx, JS_IsError(ctx, argv[0]));
}

JSValue host_promise_state(JSContext*, JSValueConst, int, JSValueConst* argv) {
  return JsRuntime::instance()->promise_state(argv[0]);
}

JSValue host_utf8_encode(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string bytes;
  if (!js_to_utf8(ctx, argv[0], &bytes)) return JS_EXCEPTION;
  return JS_NewArrayBufferCopy(ctx, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

JSValue host_utf8_decode(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  size_t offset = 0, length = 0, elem = 0;
  JSValue buffer = JS_GetTypedArrayBuffer(ctx, argv[0], &offset, &length, &elem);
  if (JS_IsException(buffer)) return JS_EXCEPTION;
  size_t size = 0;
  uint8_t* data = JS_GetArrayBuffer(ctx, &size, buffer);
  JS_FreeValue(ctx, buffer);
  if (!data && size != 0) return JS_EXCEPTION;
  std::string_view in(data ? reinterpret_cast<const char*>(data) + offset : "", data ? length : 0);
  // Valid UTF-8 (what WHATWG decodes with no replacement) goes to QuickJS as it is: no decoded
  // copy, whose pages a large file would pay for.
  if (is_valid_utf8(in)) return new_string(ctx, in);
  std::string text;
  if (!decode_utf8(in, JS_ToBool(ctx, argv[1]) > 0, &text)) return JS_NULL;
  return new_string(ctx, text);
}


// Bytes of a TypedArray/DataView argument. False (with a pending exception) for anything else.
bool view_bytes(JSContext* ctx, JSValueConst v, const uint8_t** data, size_t* len) {
  size_t offset = 0, length = 0, elem = 0;
  JSValue buffer = JS_GetTypedArrayBuffer(ctx, v, &offset, &length, &elem);
  if (JS_IsException(buffer)) return false;
  size_t size = 0;
  uint8_t* base = JS_GetArrayBuffer(ctx, &size, buffer);
  JS_FreeValue(ctx, buffer);
  if (!base && size != 0) return false;
  static const uint8_t kEmpty = 0;
  *data = base ? base + offset : &kEmpty;
  *len = base ? length : 0;
  return true;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Uint8Array -> standard base64 with padding.
JSValue host_base64_encode(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  const uint8_t* in = nullptr;
  size_t n = 0;
  if (!view_bytes(ctx, argv[0], &in, &n)) return JS_EXCEPTION;
  std::string out((n + 2) / 3 * 4, '=');
  size_t o = 0, i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    out[o++] = kBase64[v >> 18];
    out[o++] = kBase64[(v >> 12) & 63];
    out[o++] = kBase64[(v >> 6) & 63];
    out[o++] = kBase64[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(in[i]) << 16 | (i + 1 < n ? uint32_t(in[i + 1]) << 8 : 0);
    out[o++] = kBase64[v >> 18];
    out[o++] = kBase64[(v >> 12) & 63];
    if (i + 1 < n) out[o++] = kBase64[(v >> 6) & 63];
  }
  return new_string(ctx, out);
}

// Standard base64 (padding optional) -> ArrayBuffer, or null when the text is not base64.
JSValue host_base64_decode(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  static const auto kValue = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kBase64[i])] = int8_t(i);
    return t;
  }();
  size_t len = 0;
  const char* s = JS_ToCStringLen(ctx, &len, argv[0]);
  if (!s) return JS_EXCEPTION;
  std::string_view in(s, len);
  while (!in.empty() && in.back() == '=' && len - in.size() < 2) in.remove_suffix(1);
  std::vector<uint8_t> out;
  out.reserve(in.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  bool bad = in.size() % 4 == 1;
  for (char c : in) {
    int v = kValue[static_cast<unsigned char>(c)];
    if (v < 0) {
      bad = true;
      break;
    }
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(acc >> bits));
    }
  }
  JS_FreeCString(ctx, s);
  if (bad) return JS_NULL;
  return JS_NewArrayBufferCopy(ctx, out.data(), out.size());
}

// crypto.subtle (prelude): digests and HMACs of the Uint8Array views the prelude made of the
// script's BufferSources, under the hash name it normalised ("SHA-256"). The views are read
// where they are, after the one conversion that could run script code (the name).
bool hash_arg(JSContext* ctx, JSValueConst v, webcrypto::Hash* hash) {
  std::string name;
  if (!js_to_utf8(ctx, v, &name)) return false;
  auto h = webcrypto::hash_named(name);
  if (!h) {
    JS_ThrowTypeError(ctx, "unknown hash");
    return false;
  }
  *hash = *h;
  return true;
}

bool bytes_arg(JSContext* ctx, JSValueConst v, std::span<const uint8_t>* out) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!view_bytes(ctx, v, &data, &len)) return false;
  *out = {data, len};
  return true;
}

JSValue crypto_bytes(JSContext* ctx, const Result<webcrypto::Bytes>& r) {
  if (!r) return JS_ThrowInternalError(ctx, "%s", r.error().message.c_str());
  return JS_NewArrayBufferCopy(ctx, r->data.data(), r->size);
}

JSValue host_digest(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  webcrypto::Hash hash{};
  std::span<const uint8_t> data;
  if (!hash_arg(ctx, argv[0], &hash) || !bytes_arg(ctx, argv[1], &data)) return JS_EXCEPTION;
  return crypto_bytes(ctx, webcrypto::digest(hash, data));
}

JSValue host_hmac(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  webcrypto::Hash hash{};
  std::span<const uint8_t> key, data;
  if (!hash_arg(ctx, argv[0], &hash) || !bytes_arg(ctx, argv[1], &key) ||
      !bytes_arg(ctx, argv[2], &data))
    return JS_EXCEPTION;
  return crypto_bytes(ctx, webcrypto::hmac(hash, key, data));
}

JSValue host_hmac_verify(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  webcrypto::Hash hash{};
  std::span<const uint8_t> key, data, signature;
  if (!hash_arg(ctx, argv[0], &hash) || !bytes_arg(ctx, argv[1], &key) ||
      !bytes_arg(ctx, argv[2], &data) || !bytes_arg(ctx, argv[3], &signature))
    return JS_EXCEPTION;
  auto ok = webcrypto::hmac_verify(hash, key, data, signature);
  if (!ok) return JS_ThrowInternalError(ctx, "%s", ok.error().message.c_str());
  return JS_NewBool(ctx, *ok);
}

// A new ArrayBuffer with the bytes of a TypedArray: a CryptoKey's private copy of its key, and
// what exportKey returns. Made here so that no script-defined species or getter takes part.
JSValue host_bytes_copy(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::span<const uint8_t> bytes;
  if (!bytes_arg(ctx, argv[0], &bytes)) return JS_EXCEPTION;
  return JS_NewArrayBufferCopy(ctx, bytes.data(), bytes.size());
}

JSValue host_broker_send(JSContext* ctx, JSValueConst, int, JSValueConst* argv) {
  std::string payload;
  if (!js_to_utf8(ctx, argv[0], &payload)) return JS_EXCEPTION;
  std::string error = JsRuntime::instance()->broker_send(payload);
  return error.empty() ? JS_UNDEFINED : new_string(ctx, error);
}

const HostFunction kHostFunctions[] = {
    {"write", 2, guarded<host_write>},
    {"readStdin", 0, guarded<host_read_stdin>},
    {"exit", 1, guarded<host_exit>},
    {"now", 0, guarded<host_now>},
    {"randomBytes", 1, guarded<host_random_bytes>},
    {"enqueueJob", 1, guarded<host_enqueue_job>},
    {"isError", 1, guarded<host_is_error>},
    {"promiseState", 1, guarded<host_promise_state>},
    {"utf8Encode", 1, guarded<host_utf8_encode>},
    {"utf8Decode", 2, guarded<host_utf8_decode>},
    {"base64Encode", 1, guarded<host_base64_encode>},
    {"base64Decode", 1, guarded<host_base64_decode>},
    {"brokerSend", 1, guarded<host_broker_send>},
    {"digest", 2, guarded<host_digest>},
    {"hmac", 3, guarded<host_hmac>},
    {"hmacVerify", 4, guarded<host_hmac_verify>},
    {"bytesCopy", 1, guarded<host_bytes_copy>},
};

// ---- runtime callbacks
// A live run's call is interrupted by the supervisor with SIGINT (past its deadline, or
// cancelled): it then ends as a timeout, and the interpreter stays for the next call.
volatile sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

int interrupt_handler(JSRuntime*, void*) { return JsRuntime::instance()->past_backstop() ? 1 : 0; }

void rejection_tracker(JSContext*, JSValueConst promise, JSValueConst reason, JS_BOOL is_handled,
                       void*) {
  try {
    JsRuntime::instance()->on_rejection(promise, reason, is_handled);
  } catch (...) {
    // Out of memory while recording: the rejection goes unreported; the run still ends.
  }
}

// The module loader: Node's built-in modules that the prelude implements (fs), for import
// declarations the server did not rewrite and for import(); every other import is refused.
JSModuleDef* load_module(JSContext* ctx, const char* name, void*) {
  JsRuntime* rt = JsRuntime::instance();
  bool failed = false;
  if (JSModuleDef* m = rt->builtin_module(name, &failed)) return m;
  if (failed) return nullptr;
  rt->note_import_refused();
  if (rt->has_dependencies()) {
    // The server rewrote the leading import declarations; this one came later, or is import().
    JS_ThrowSyntaxError(ctx,
                        "cannot import '%s' here: put import declarations at the top of the "
                        "code, before any other statement, or use require('%s')",
                        name, name);
  } else {
    JS_ThrowSyntaxError(ctx, "%s (cannot import '%s')", kImportRefused, name);
  }
  return nullptr;
}

std::string get_string_prop(JSContext* ctx, JSValueConst obj, const char* name) {
  JSValue v = JS_GetPropertyStr(ctx, obj, name);
  std::string s;
  if (JS_IsException(v)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
  } else if (!JS_IsUndefined(v) && !js_to_utf8(ctx, v, &s)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
  }
  JS_FreeValue(ctx, v);
  return s;
}

bool is_error_named(JSContext* ctx, JSValueConst v, const char* name) {
  return JS_IsError(ctx, v) && get_string_prop(ctx, v, "name") == name;
}

int error_line(JSContext* ctx, JSValueConst err) {
  JSValue v = JS_GetPropertyStr(ctx, err, "lineNumber");
  int line = 0;
  if (JS_IsException(v) || JS_ToInt32(ctx, &line, v)) JS_FreeValue(ctx, JS_GetException(ctx));
  JS_FreeValue(ctx, v);
  return line;
}

std::string source_line(const std::string& code, int line) {
  size_t pos = 0;
  for (int i = 1; i < line && pos != std::string::npos; ++i) {
    pos = code.find('\n', pos);
    if (pos != std::string::npos) ++pos;
  }
  if (pos == std::string::npos || pos >= code.size()) return {};
  size_t end = code.find('\n', pos);
  std::string s = code.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

// Deep recursion must end in a catchable "stack overflow" error, never in SIGSEGV: leave room
// below the JS limit for the C frames QuickJS and libc use without checking.
size_t stack_budget() {
  constexpr size_t kMargin = 1u << 20;
  rlimit rl{};
  size_t limit = 8u << 20;
  if (::getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  if (limit > (64u << 20)) limit = 64u << 20;
  return limit > 2 * kMargin ? limit - kMargin : limit / 2;
}

// With top-level await the code runs as an async function body, which has no completion value.
// To still report the value of the last expression, rewrite the last top-level line (one that
// starts at column 0 and begins an expression, with what follows it) into `return (<rest of the code>\n);`. Only a
// guess: the caller keeps it only if it compiles, and falls back to the plain body otherwise.
std::optional<std::string> return_last_expression(const std::string& code) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < code.size(); ++i)
    if (code[i] == '\n') starts.push_back(i + 1);
  auto line_at = [&](size_t k) {
    size_t end = k + 1 < starts.size() ? starts[k + 1] - 1 : code.size();
    return std::string_view(code).substr(starts[k], end - starts[k]);
  };
  auto trimmed = [](std::string_view l) {
    while (!l.empty() && isspace(static_cast<unsigned char>(l.back()))) l.remove_suffix(1);
    return l;
  };
  auto starts_with_word = [](std::string_view l, std::string_view w) {
    return l.substr(0, w.size()) == w &&
           (l.size() == w.size() || !(isalnum(static_cast<unsigned char>(l[w.size()])) ||
                                      l[w.size()] == '_' || l[w.size()] == '$'));
  };
  static constexpr std::string_view kStatements[] = {
      "const", "let", "var", "function", "class", "if", "else", "for", "while", "do", "switch",
      "try", "catch", "finally", "return", "throw", "import", "export", "break", "continue",
      "debugger", "with", "case", "default"};
  for (size_t k = starts.size(); k-- > 0;) {
    std::string_view l = trimmed(line_at(k));
    if (l.empty() || l.substr(0, 2) == "//") continue;
    // Indented lines and closing brackets belong to a statement that starts further up.
    if (isspace(static_cast<unsigned char>(l[0])) || strchr("})];", l[0])) continue;
    if (strchr(",{/*.?:=&|+-", l[0])) return std::nullopt;
    for (auto w : kStatements)
      if (starts_with_word(l, w)) return std::nullopt;
    if (starts_with_word(l, "async") && starts_with_word(l.substr(5 + (l.size() > 5)), "function"))
      return std::nullopt;
    // A loop or condition without braces right above: the line is its body, not a statement.
    for (size_t j = k; j-- > 0;) {
      std::string_view prev = trimmed(line_at(j));
      while (!prev.empty() && isspace(static_cast<unsigned char>(prev[0]))) prev.remove_prefix(1);
      if (prev.empty() || prev.substr(0, 2) == "//") continue;
      char last = prev.back();
      for (auto w : {"for", "while", "if", "else", "do", "with"})
        if (starts_with_word(prev, w) && last != ';' && last != '}') return std::nullopt;
      break;
    }
    std::string rest(code.substr(starts[k]));
    std::string_view r = trimmed(rest);
    if (!r.empty() && r.back() == ';') r.remove_suffix(1);
    return code.substr(0, starts[k]) + "return (" + std::string(r) + "\n);";
  }
  return std::nullopt;
}

}  // namespace

Status JsRuntime::init() {
  instance_ = this;
  // libcrypto (crypto.subtle) is made ready here, in the zygote, once for every run.
  if (auto s = webcrypto::init(); !s) return make_error("crypto.subtle: " + s.error().message);
  if (auto s = arena::reserve(); !s) return s;
  return make_interpreter(nullptr);
}

Status JsRuntime::make_interpreter(const JSMallocFunctions* mf) {
  promise_class_ = 0;
  rt_ = mf ? JS_NewRuntime2(mf, nullptr) : JS_NewRuntime();
  if (!rt_) return make_error("cannot create the QuickJS runtime");
  ctx_ = JS_NewContext(rt_);
  if (!ctx_) return make_error("cannot create the QuickJS context");
  JS_SetModuleLoaderFunc(rt_, nullptr, load_module, nullptr);
  JS_SetHostPromiseRejectionTracker(rt_, rejection_tracker, nullptr);
  JS_SetInterruptHandler(rt_, interrupt_handler, nullptr);
  backstop_ns_ = INT64_MAX;

  // The promise class id is internal to quickjs.c: find it by asking a real promise.
  JSValue funcs[2];
  JSValue promise = JS_NewPromiseCapability(ctx_, funcs);
  for (JSClassID id = 1; id < 256 && promise_class_ == 0; ++id) {
    if (JS_GetOpaque(promise, id) != nullptr) promise_class_ = id;
  }
  JS_FreeValue(ctx_, funcs[0]);
  JS_FreeValue(ctx_, funcs[1]);
  JS_FreeValue(ctx_, promise);

  JSValue factory = JS_Eval(ctx_, kPrelude, sizeof kPrelude - 1, "<prelude>", JS_EVAL_TYPE_GLOBAL);
  if (JS_IsException(factory)) {
    JSValue e = JS_GetException(ctx_);
    std::string msg = get_string_prop(ctx_, e, "message") + "\n" + get_string_prop(ctx_, e, "stack");
    JS_FreeValue(ctx_, e);
    return make_error("prelude failed: " + msg);
  }
  JSValue host = JS_NewObject(ctx_);
  for (auto table : {std::span<const HostFunction>(kHostFunctions), fs::host_functions()}) {
    for (const HostFunction& f : table) {
      JS_SetPropertyStr(ctx_, host, f.name, JS_NewCFunction(ctx_, f.fn, f.name, f.length));
    }
  }
  hooks_ = JS_Call(ctx_, factory, JS_UNDEFINED, 1, &host);
  JS_FreeValue(ctx_, host);
  JS_FreeValue(ctx_, factory);
  if (JS_IsException(hooks_)) {
    JSValue e = JS_GetException(ctx_);
    std::string msg = get_string_prop(ctx_, e, "message") + "\n" + get_string_prop(ctx_, e, "stack");
    JS_FreeValue(ctx_, e);
    return make_error("prelude setup failed: " + msg);
  }
  if (auto s = find_random_state(); !s) return s;
  // Start every run with a compact heap: fork copies touched pages.
  JS_RunGC(rt_);
  JSMemoryUsage mu;
  JS_ComputeMemoryUsage(rt_, &mu);
  baseline_heap_ = size_t(mu.malloc_size);
  return {};
}

// QuickJS keeps Math.random's xorshift64* state in the JSContext, seeded once from the clock
// when the context is made. Every run is a fork of that context, so without a new seed every run
// would draw the same numbers. The state's place is found from one draw: Math.random() returns
// the top 52 bits of state * kMul as the mantissa of a double in [1, 2), minus 1.
Status JsRuntime::find_random_state() {
  constexpr uint64_t kMul = 0x2545F4914F6CDD1DULL;
  JSValue v = JS_Eval(ctx_, "Math.random()", 13, "<init>", JS_EVAL_TYPE_GLOBAL);
  double d = 0;
  bool ok = !JS_IsException(v) && JS_ToFloat64(ctx_, &d, v) == 0;
  JS_FreeValue(ctx_, v);
  if (!ok) return make_error("Math.random() failed during start-up");
  double in_1_2 = d + 1.0;  // exact: d was computed as (that double) - 1.0
  uint64_t bits = 0;
  std::memcpy(&bits, &in_1_2, sizeof bits);
  const uint64_t mantissa = bits & ((1ULL << 52) - 1);
  const size_t size = js_malloc_usable_size(ctx_, ctx_);
  const auto* base = reinterpret_cast<const unsigned char*>(ctx_);
  size_t found = 0;
  int matches = 0;
  for (size_t off = 0; off + sizeof(uint64_t) <= size; off += alignof(uint64_t)) {
    uint64_t state = 0;
    std::memcpy(&state, base + off, sizeof state);
    if (state != 0 && ((state * kMul) >> 12) == mantissa) {
      found = off;
      ++matches;
    }
  }
  if (matches != 1)
    return make_error("cannot find the state of Math.random in the QuickJS context");
  random_state_offset_ = found;
  return {};
}

void JsRuntime::after_fork_child() { reseed(); }

void JsRuntime::warm_up() {
  // Compiling, evaluating and formatting a value, once on a sample; an expression leaves no
  // binding behind.
  static constexpr char kSample[] =
      "(() => { const a = [1, 2, 3].map((x) => x * 2); return `${a.join(' ')}`; })()";
  JSValue v = JS_Eval(ctx_, kSample, sizeof kSample - 1, "<warm-up>", JS_EVAL_TYPE_GLOBAL);
  if (JS_IsException(v)) {
    JS_FreeValue(ctx_, JS_GetException(ctx_));
  } else {
    (void)inspect(v);
  }
  JS_FreeValue(ctx_, v);
}

void JsRuntime::reseed() {
  uint64_t seed = 0;
  while (seed == 0) {  // xorshift needs a non-zero state
    if (::getrandom(&seed, sizeof seed, 0) != ssize_t(sizeof seed)) seed = uint64_t(mono_ns()) | 1;
  }
  std::memcpy(reinterpret_cast<unsigned char*>(ctx_) + random_state_offset_, &seed, sizeof seed);
}

bool JsRuntime::past_backstop() {
  if (!timed_out_ && (g_interrupted || mono_ns() >= backstop_ns_)) timed_out_ = true;
  return timed_out_;
}

void JsRuntime::exit_now(int code) {
  worker::leaving();  // process.exit() ends a session's live interpreter too
  report_.exit_code = code & 0xff;
  worker::write_report(report_);
  _exit(code & 0xff);
}

void JsRuntime::on_rejection(JSValueConst promise, JSValueConst reason, bool handled) {
  if (!handled) {
    rejections_.push_back({JS_DupValue(ctx_, promise), JS_DupValue(ctx_, reason)});
    return;
  }
  for (auto it = rejections_.begin(); it != rejections_.end(); ++it) {
    if (JS_VALUE_GET_PTR(it->promise) == JS_VALUE_GET_PTR(promise)) {
      JS_FreeValue(ctx_, it->promise);
      JS_FreeValue(ctx_, it->reason);
      rejections_.erase(it);
      return;
    }
  }
}

bool JsRuntime::is_promise(JSValueConst value) const {
  return promise_class_ != 0 && JS_GetOpaque(value, promise_class_) != nullptr;
}

JSValue JsRuntime::promise_state(JSValueConst value) {
  if (!is_promise(value)) return JS_UNDEFINED;
  auto* data = static_cast<PromiseDataMirror*>(JS_GetOpaque(value, promise_class_));
  if (!data) return JS_UNDEFINED;
  JSValue arr = JS_NewArray(ctx_);
  JS_SetPropertyUint32(ctx_, arr, 0, JS_NewInt32(ctx_, data->state));
  JS_SetPropertyUint32(ctx_, arr, 1,
                       data->state == 0 ? JS_UNDEFINED : JS_DupValue(ctx_, data->result));
  return arr;
}

JSModuleDef* JsRuntime::builtin_module(const char* name, bool* failed) {
  JSValue spec = JS_NewString(ctx_, name);
  JSValue ns = call_hook("builtinModule", 1, &spec);
  JS_FreeValue(ctx_, spec);
  if (JS_IsException(ns)) {
    *failed = true;
    return nullptr;
  }
  if (!JS_IsObject(ns)) {
    JS_FreeValue(ctx_, ns);
    return nullptr;
  }
  // Its exports are the namespace's names; their values are set when it is evaluated.
  JSModuleDef* m = JS_NewCModule(ctx_, name, [](JSContext* ctx, JSModuleDef* def) {
    return JsRuntime::instance()->init_builtin_module(ctx, def);
  });
  JSPropertyEnum* names = nullptr;
  uint32_t count = 0;
  bool ok = m && JS_GetOwnPropertyNames(ctx_, &names, &count, ns,
                                        JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY) == 0;
  for (uint32_t i = 0; ok && i < count; ++i) {
    const char* key = JS_AtomToCString(ctx_, names[i].atom);
    ok = key && JS_AddModuleExport(ctx_, m, key) == 0;
    JS_FreeCString(ctx_, key);
  }
  for (uint32_t i = 0; names && i < count; ++i) JS_FreeAtom(ctx_, names[i].atom);
  js_free(ctx_, names);
  JS_FreeValue(ctx_, ns);
  if (!ok) *failed = true;
  return ok ? m : nullptr;
}

int JsRuntime::init_builtin_module(JSContext* ctx, JSModuleDef* m) {
  JSAtom name = JS_GetModuleName(ctx, m);
  JSValue spec = JS_AtomToString(ctx, name);
  JS_FreeAtom(ctx, name);
  JSValue ns = JS_IsException(spec) ? JS_EXCEPTION : call_hook("builtinModule", 1, &spec);
  JS_FreeValue(ctx, spec);
  if (JS_IsException(ns)) return -1;
  JSPropertyEnum* names = nullptr;
  uint32_t count = 0;
  int rc = JS_GetOwnPropertyNames(ctx, &names, &count, ns, JS_GPN_STRING_MASK | JS_GPN_ENUM_ONLY);
  for (uint32_t i = 0; rc == 0 && i < count; ++i) {
    const char* key = JS_AtomToCString(ctx, names[i].atom);
    JSValue v = key ? JS_GetProperty(ctx, ns, names[i].atom) : JS_EXCEPTION;
    if (!key || JS_IsException(v) || JS_SetModuleExport(ctx, m, key, v) < 0) rc = -1;
    JS_FreeCString(ctx, key);
  }
  for (uint32_t i = 0; names && i < count; ++i) JS_FreeAtom(ctx, names[i].atom);
  js_free(ctx, names);
  JS_FreeValue(ctx, ns);
  return rc;
}

JSValue JsRuntime::call_hook(const char* name, int argc, JSValueConst* argv) {
  JSValue fn = JS_GetPropertyStr(ctx_, hooks_, name);
  JSValue r = JS_Call(ctx_, fn, hooks_, argc, argv);
  JS_FreeValue(ctx_, fn);
  return r;
}

std::string JsRuntime::inspect(JSValueConst value) {
  JSValue s = call_hook("inspect", 1, &value);
  std::string out;
  if (JS_IsException(s) || !js_to_utf8(ctx_, s, &out)) {
    JS_FreeValue(ctx_, JS_GetException(ctx_));
    out = "[value that cannot be inspected]";
  }
  JS_FreeValue(ctx_, s);
  return out;
}

int JsRuntime::finish(int code) {
  report_.exit_code = code & 0xff;
  worker::write_report(report_);
  return code;
}

int JsRuntime::fail_timeout() {
  if (live_) {
    // Not interrupted itself: the deadline is lifted while it runs (it is short and bounded).
    timed_out_ = false;
    g_interrupted = 0;
    backstop_ns_ = INT64_MAX;
    JSValue r = call_hook("abandon", 0, nullptr);
    if (JS_IsException(r)) JS_FreeValue(ctx_, JS_GetException(ctx_));
    JS_FreeValue(ctx_, r);
    timed_out_ = true;
  }
  report_.error_kind = "timeout";
  report_.error_message = "execution timed out";
  return finish(1);
}

int JsRuntime::fail_uncaught(JSValue exception, const char* prefix) {
  if (timed_out_) {
    JS_FreeValue(ctx_, exception);
    return fail_timeout();
  }
  const bool oom = is_error_named(ctx_, exception, "InternalError") &&
                   get_string_prop(ctx_, exception, "message") == "out of memory";
  // Room to format the error, even when the heap budget is what ran out.
  JSMemoryUsage mu;
  JS_ComputeMemoryUsage(rt_, &mu);
  JS_SetMemoryLimit(rt_, size_t(mu.malloc_size) + (32u << 20));

  std::string text, summary;
  JSValue d = call_hook("describe", 1, &exception);
  JSValue t = JS_GetPropertyUint32(ctx_, d, 0);
  JSValue s = JS_GetPropertyUint32(ctx_, d, 1);
  if (JS_IsException(d) || !js_to_utf8(ctx_, t, &text) || !js_to_utf8(ctx_, s, &summary)) {
    JS_FreeValue(ctx_, JS_GetException(ctx_));
    if (!js_to_utf8(ctx_, exception, &text)) {
      JS_FreeValue(ctx_, JS_GetException(ctx_));
      text = "exception";
    }
    summary = text;
  }
  JS_FreeValue(ctx_, t);
  JS_FreeValue(ctx_, s);
  JS_FreeValue(ctx_, d);
  JS_FreeValue(ctx_, exception);

  write_all(2, std::string(prefix) + text + "\n");
  report_.error_kind = oom ? "memory" : "exception";
  report_.error_message = std::string(prefix == std::string_view("Uncaught ") ? "" : prefix) + summary;
  return finish(1);
}

int JsRuntime::compile(const ipc::RunRequest& req, JSValue* compiled, Mode* mode) {
  const std::string& code = req.code;
  constexpr int kCompile = JS_EVAL_FLAG_COMPILE_ONLY;
  JSValue v = JS_Eval(ctx_, code.c_str(), code.size(), kFileName, JS_EVAL_TYPE_GLOBAL | kCompile);
  if (!JS_IsException(v)) {
    *compiled = v;
    *mode = Mode::script;
    return -1;
  }
  JSValue script_err = JS_GetException(ctx_);
  if (!is_error_named(ctx_, script_err, "SyntaxError")) return fail_uncaught(script_err, "Uncaught ");

  // Top-level await: the code as the body of an async function. The opening is on the first
  // line so the user's line numbers stay the same.
  if (auto body = return_last_expression(code)) {
    std::string wrapped = "(async () => {" + *body + "\n})()";
    v = JS_Eval(ctx_, wrapped.c_str(), wrapped.size(), kFileName, JS_EVAL_TYPE_GLOBAL | kCompile);
    if (!JS_IsException(v)) {
      JS_FreeValue(ctx_, script_err);
      *compiled = v;
      *mode = Mode::async_body;
      return -1;
    }
    JS_FreeValue(ctx_, JS_GetException(ctx_));
  }
  std::string wrapped = "(async () => {" + code + "\n})()";
  v = JS_Eval(ctx_, wrapped.c_str(), wrapped.size(), kFileName, JS_EVAL_TYPE_GLOBAL | kCompile);
  if (!JS_IsException(v)) {
    JS_FreeValue(ctx_, script_err);
    *compiled = v;
    *mode = Mode::async_body;
    return -1;
  }
  JSValue body_err = JS_GetException(ctx_);

  // import/export: run as a module. QuickJS resolves imports while compiling a module, and the
  // loader refuses every one of them, so only export-only modules get through.
  import_refused_ = false;
  v = JS_Eval(ctx_, code.c_str(), code.size(), kFileName, JS_EVAL_TYPE_MODULE | kCompile);
  if (!JS_IsException(v)) {
    JS_FreeValue(ctx_, script_err);
    JS_FreeValue(ctx_, body_err);
    *compiled = v;
    *mode = Mode::module;
    return -1;
  }
  JSValue module_err = JS_GetException(ctx_);
  if (import_refused_) {
    JS_FreeValue(ctx_, script_err);
    JS_FreeValue(ctx_, body_err);
    return fail_syntax(code, module_err);
  }
  JS_FreeValue(ctx_, module_err);

  // The parse that got furthest has the most useful message (e.g. past a top-level await).
  JSValue err = script_err;
  if (error_line(ctx_, body_err) > error_line(ctx_, script_err)) std::swap(err, body_err);
  JS_FreeValue(ctx_, body_err);
  if (!req.transpiled) {
    // Maybe TypeScript or syntax newer than QuickJS 2021: the supervisor runs esbuild and resends.
    report_.needs_transpile = true;
    report_.error_message = "SyntaxError: " + get_string_prop(ctx_, err, "message");
    JS_FreeValue(ctx_, err);
    return finish(2);
  }
  return fail_syntax(code, err);
}

int JsRuntime::fail_syntax(const std::string& code, JSValue err) {
  std::string message = get_string_prop(ctx_, err, "message");
  int line = error_line(ctx_, err);
  JS_FreeValue(ctx_, err);
  if (line > 0) {
    std::string where = std::string(kFileName) + ":" + std::to_string(line);
    write_all(2, where + "\n" + source_line(code, line) + "\n\nSyntaxError: " + message + "\n");
    report_.error_message = "SyntaxError: " + message + " (" + where + ")";
  } else {
    write_all(2, "SyntaxError: " + message + "\n");
    report_.error_message = "SyntaxError: " + message;
  }
  report_.error_kind = "syntax";
  return finish(1);
}

// ---- the network broker channel: frames of a 4-byte little-endian length and that much JSON.
std::string JsRuntime::broker_send(std::string_view payload) {
  if (broker_fd_ < 0) return broker_closed_.empty() ? kNoNetwork : broker_closed_;
  if (payload.size() > ipc::kMaxFrameBytes) {
    return "the request is too large (" + std::to_string(payload.size() >> 20) + " MiB; at most " +
           std::to_string(ipc::kMaxFrameBytes >> 20) + " MiB including the base64 body)";
  }
  char head[ipc::FrameHeader::kBytes];
  ipc::FrameHeader{uint32_t(payload.size())}.write(head);
  size_t done = 0;
  const size_t total = sizeof head + payload.size();
  while (done < total) {
    iovec iov[2];
    int cnt = 0;
    if (done < sizeof head) iov[cnt++] = {head + done, sizeof head - done};
    size_t p = done < sizeof head ? 0 : done - sizeof head;
    iov[cnt++] = {const_cast<char*>(payload.data()) + p, payload.size() - p};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = size_t(cnt);
    ssize_t w = ::sendmsg(broker_fd_, &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd pf{broker_fd_, POLLOUT, 0};
      ::poll(&pf, 1, 100);
      if (past_backstop()) break;
      continue;
    }
    if (w <= 0) break;
    done += size_t(w);
  }
  if (done == total) {
    broker_used_ = true;
    return {};
  }
  // A partial frame leaves the channel unusable: close it; pending fetches fail with the reason.
  close_broker(kBrokerGone);
  return broker_closed_;
}

void JsRuntime::close_broker(const char* reason) {
  if (broker_fd_ >= 0) ::close(broker_fd_);
  broker_fd_ = -1;
  if (broker_closed_.empty()) broker_closed_ = reason;
  broker_in_ = ipc::FrameReader();
}

bool JsRuntime::requests_pending() {
  JSValue r = call_hook("brokerPending", 0, nullptr);
  int32_t n = 0;
  if (JS_IsException(r) || JS_ToInt32(ctx_, &n, r)) JS_FreeValue(ctx_, JS_GetException(ctx_));
  JS_FreeValue(ctx_, r);
  return n > 0;
}

int JsRuntime::service_broker(int64_t until) {
  std::optional<std::string> frame = broker_in_.garbled() ? std::nullopt : broker_in_.next();
  if (broker_fd_ >= 0 && !frame && !broker_in_.garbled()) {
    int timeout = 0;
    if (until == INT64_MAX) {
      timeout = -1;
    } else if (int64_t left = until - mono_ns(); left > 0) {
      timeout = int(std::min<int64_t>((left + 999'999) / 1'000'000, INT_MAX));
    }
    pollfd pf{broker_fd_, POLLIN, 0};
    int ready = ::poll(&pf, 1, timeout);
    if (ready < 0 && errno != EINTR) close_broker(kBrokerGone);
    if (ready > 0) {
      // Everything available now, without blocking.
      static char buf[256u << 10];
      for (;;) {
        ssize_t got = ::recv(broker_fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (got > 0 && !broker_in_.feed(buf, size_t(got))) break;  // garbled: handled below
        if (got > 0) continue;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        // EOF or error: what was received completely is still delivered below.
        ::close(broker_fd_);
        broker_fd_ = -1;
        if (broker_closed_.empty()) broker_closed_ = kBrokerGone;
        break;
      }
    }
  }
  if (!frame && !broker_in_.garbled()) frame = broker_in_.next();
  if (broker_in_.garbled() && !frame) close_broker(kBrokerGarbled);
  if (frame) {
    JSValue text = JS_NewStringLen(ctx_, frame->data(), frame->size());
    frame.reset();
    if (JS_IsException(text)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    JSValue r = call_hook("brokerMessage", 1, &text);
    JS_FreeValue(ctx_, text);
    if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    const bool understood = JS_ToBool(ctx_, r) > 0;
    JS_FreeValue(ctx_, r);
    if (!understood) close_broker(kBrokerGarbled);
    return -1;
  }
  if (broker_fd_ < 0) {
    // Closed (or garbled) with answers outstanding: they fail now rather than at the deadline.
    JSValue reason = new_string(ctx_, broker_closed_.empty() ? kNoNetwork : broker_closed_);
    JSValue r = call_hook("brokerClosed", 1, &reason);
    JS_FreeValue(ctx_, reason);
    if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    JS_FreeValue(ctx_, r);
  }
  return -1;
}

int JsRuntime::event_loop(bool tracking, bool top_level_await) {
  bool settled = !tracking;
  for (;;) {
    for (unsigned n = 1;; ++n) {
      JSContext* job_ctx = nullptr;
      int r = JS_ExecutePendingJob(rt_, &job_ctx);
      if (r < 0) return fail_uncaught(JS_GetException(job_ctx), "Uncaught ");
      if (r == 0) break;
      // A promise flood never leaves this loop on its own.
      if ((n & 1023) == 0 && past_backstop()) return fail_timeout();
    }
    if (timed_out_) return fail_timeout();
    if (!settled) {
      JSValue st = call_hook("trackedState", 0, nullptr);
      JSValue state = JS_GetPropertyStr(ctx_, st, "state");
      int32_t code = 0;
      JS_ToInt32(ctx_, &code, state);
      JS_FreeValue(ctx_, state);
      if (code != 0) {
        settled = true;
        JSValue value = JS_GetPropertyStr(ctx_, st, "value");
        JS_FreeValue(ctx_, st);
        if (code == 2) return fail_uncaught(value, "Uncaught ");
        if (!JS_IsUndefined(value)) report_.value = inspect(value);
        JS_FreeValue(ctx_, value);
      } else {
        JS_FreeValue(ctx_, st);
      }
    }
    if (!rejections_.empty()) {
      Rejection first = rejections_.front();
      rejections_.erase(rejections_.begin());
      JS_FreeValue(ctx_, first.promise);
      return fail_uncaught(first.reason, "Uncaught (in promise) ");
    }
    JSValue r = call_hook("runTimer", 0, nullptr);
    if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    double wait = -1;
    JS_ToFloat64(ctx_, &wait, r);
    JS_FreeValue(ctx_, r);
    if (broker_used_ && requests_pending()) {
      // Answers and timers interleave: wait on the channel for as long as the next timer allows
      // (without a timer, up to the backstop). Each answer is followed by the jobs it queues.
      int64_t until = wait == 0 ? 0 : wait < 0 ? backstop_ns_ : mono_ns() + int64_t(wait * 1e6);
      if (until > backstop_ns_) until = backstop_ns_;
      if (int code = service_broker(until); code >= 0) return code;
      if (past_backstop()) return fail_timeout();
      continue;
    }
    if (wait == 0) continue;
    if (wait < 0) break;
    int64_t until = mono_ns() + int64_t(wait * 1e6);
    if (until > backstop_ns_) until = backstop_ns_;
    timespec ts{time_t(until / 1'000'000'000), long(until % 1'000'000'000)};
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
      if (g_interrupted) break;
    }
    if (past_backstop()) return fail_timeout();
  }
  if (!settled && top_level_await) {
    // Like Node: the loop is empty but the top-level await can never finish.
    write_all(2, "Warning: Detected unsettled top-level await\n");
    report_.error_kind = "exception";
    report_.error_message = "unsettled top-level await: the awaited promise never settled";
    return finish(13);
  }
  JSValue code = call_hook("exitCode", 0, nullptr);
  int32_t exit_code = 0;
  JS_ToInt32(ctx_, &exit_code, code);
  JS_FreeValue(ctx_, code);
  return finish(exit_code);
}

// The words of the arena's roots (arena::roots()): where a run continuing from a heap finds the
// interpreter.
enum HeapRoot : size_t { kRootRuntime, kRootContext, kRootHooksValue, kRootHooksTag, kRootBaseline };
static_assert(sizeof(JSValue) == 2 * sizeof(uint64_t), "JSValue is a 16-byte struct on x86_64");

int JsRuntime::make_heap(const ipc::RunRequest& req) {
  struct stat st{};
  if (::fstat(ipc::kHeapFd, &st) != 0) return fail_internal("the heap memfd is missing");
  if (auto s = arena::create(ipc::kHeapFd, size_t(st.st_size)); !s) return fail_internal(s.error().message);
  ::close(ipc::kHeapFd);
  if (auto s = make_interpreter(arena::functions()); !s) return fail_internal(s.error().message);
  worker::mark_step("run: interpreter made in the heap");
  JS_UpdateStackTop(rt_);
  JS_SetMaxStackSize(rt_, stack_budget());
  if (req.mem_mb > 0) JS_SetMemoryLimit(rt_, baseline_heap_ + size_t(req.mem_mb) * (1u << 20));
  fs::set_read_limit(size_t(req.mem_mb) << 20);
  if (int code = call_setup(req); code >= 0) return code;
  has_dependencies_ = true;
  if (int code = load_dependencies(req.deps_code); code >= 0) return code;
  worker::mark_step("run: dependencies loaded");
  // Only a heap at rest can be taken: no queued job, timer, broker request or rejection that a
  // run of its own would have handled.
  JSValue idle = call_hook("idle", 0, nullptr);
  const bool at_rest =
      JS_ToBool(ctx_, idle) == 1 && !JS_IsJobPending(rt_) && rejections_.empty() && !broker_used_;
  JS_FreeValue(ctx_, idle);
  if (!at_rest) return finish(0);  // no heap_bytes: the layer is loaded by each run instead
  JS_SetMemoryLimit(rt_, size_t(-1));
  JS_RunGC(rt_);
  JSMemoryUsage mu;
  JS_ComputeMemoryUsage(rt_, &mu);
  // A collection walks (and so copies) every page of the heap: runs allocate half its size
  // before their first, as QuickJS schedules them after one.
  JS_SetGCThreshold(rt_, size_t(mu.malloc_size) + size_t(mu.malloc_size) / 2);
  uint64_t* roots = arena::roots();
  roots[kRootRuntime] = reinterpret_cast<uint64_t>(rt_);
  roots[kRootContext] = reinterpret_cast<uint64_t>(ctx_);
  std::memcpy(&roots[kRootHooksValue], &hooks_, sizeof hooks_);
  roots[kRootBaseline] = uint64_t(mu.malloc_size);
  report_.heap_bytes = arena::used();
  // The supervisor seals the memfd as soon as it has the report, which it cannot while a
  // writable shared mapping exists; nothing touches the interpreter after this.
  arena::release();
  return finish(0);
}

Status JsRuntime::adopt_heap() {
  if (auto s = arena::adopt(ipc::kHeapFd); !s) return s;
  ::close(ipc::kHeapFd);
  const uint64_t* roots = arena::roots();
  rt_ = reinterpret_cast<JSRuntime*>(roots[kRootRuntime]);
  ctx_ = reinterpret_cast<JSContext*>(roots[kRootContext]);
  std::memcpy(&hooks_, &roots[kRootHooksValue], sizeof hooks_);
  baseline_heap_ = size_t(roots[kRootBaseline]);
  if (!rt_ || !ctx_ || JS_GetRuntime(ctx_) != rt_) return make_error("the heap holds no interpreter");
  reseed();
  return {};
}

int JsRuntime::fail_internal(const std::string& message) {
  report_.error_kind = "internal";
  report_.error_message = message;
  std::string line = "1mcp: " + message + "\n";
  (void)!::write(2, line.data(), line.size());
  return finish(1);
}

int JsRuntime::call_setup(const ipc::RunRequest& req) {
  JSValue argv = JS_NewArray(ctx_);
  for (uint32_t i = 0; i < req.args.size(); ++i) {
    JS_SetPropertyUint32(ctx_, argv, i, new_string(ctx_, req.args[i]));
  }
  JSValue env = JS_NewObject(ctx_);
  for (const auto& [k, v] : req.env) JS_SetPropertyStr(ctx_, env, k.c_str(), new_string(ctx_, v));
  std::string cwd = req.cwd;
  if (cwd.empty()) {
    char buf[PATH_MAX];
    cwd = ::getcwd(buf, sizeof buf) ? buf : "/";
  }
  JSValue setup_args[3] = {argv, env, new_string(ctx_, cwd)};
  JSValue r = call_hook("setup", 3, setup_args);
  for (JSValue& a : setup_args) JS_FreeValue(ctx_, a);
  if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
  JS_FreeValue(ctx_, r);
  return -1;
}

int JsRuntime::run_checked(const ipc::RunRequest& req) {
  ::signal(SIGPIPE, SIG_IGN);  // a closed pipe is EPIPE, handled in write_all
  // A file written past RLIMIT_FSIZE (a workspace may be larger) is EFBIG for fs, not a kill.
  ::signal(SIGXFSZ, SIG_IGN);
  // A live interpreter's later calls start from what the last one left: only the per-call state
  // is reset (the npm layer, once loaded, stays).
  report_ = {};
  timed_out_ = false;
  live_ = req.live;
  if (req.live) {
    g_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;  // no SA_RESTART: a sleep or a poll returns at once
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
  }
  import_refused_ = false;
  broker_used_ = false;
  broker_closed_.clear();
  broker_in_ = ipc::FrameReader();
  broker_fd_ = -1;
  if (req.heap == ipc::HeapMode::make) return make_heap(req);
  if (req.heap == ipc::HeapMode::use) {
    if (auto s = adopt_heap(); !s) return fail_internal(s.error().message);
    worker::mark_step("run: heap adopted");
  }
  // The broker channel (the supervisor refuses requests there when the run has no network).
  // Without it, fetch fails the same way: "network access is not available".
  struct stat st{};
  if (::fstat(ipc::kBrokerFd, &st) == 0 && S_ISSOCK(st.st_mode)) broker_fd_ = ipc::kBrokerFd;
  JS_UpdateStackTop(rt_);
  JS_SetMaxStackSize(rt_, stack_budget());
  if (req.mem_mb > 0) JS_SetMemoryLimit(rt_, baseline_heap_ + size_t(req.mem_mb) * (1u << 20));
  fs::set_read_limit(size_t(req.mem_mb) << 20);
  if (req.timeout_ms > 0) {
    backstop_ns_ = mono_ns() + int64_t(req.timeout_ms) * 1'000'000 + kBackstopGraceNs;
  }

  if (req.heap == ipc::HeapMode::use) {
    // argv, env and cwd were set up when the heap was made (they are part of its key).
    JSValue r = call_hook("resume", 0, nullptr);
    if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    JS_FreeValue(ctx_, r);
  } else if (int code = call_setup(req); code >= 0) {
    return code;
  }

  JSValue compiled = JS_UNDEFINED;
  Mode mode = Mode::script;
  has_dependencies_ = has_dependencies_ || !req.deps_code.empty() || req.heap == ipc::HeapMode::use;
  if (int code = compile(req, &compiled, &mode); code >= 0) return code;
  worker::mark_step("run: code compiled");
  // After compiling: code that needs esbuild first does not pay for the layer twice.
  if (!req.deps_code.empty()) {
    if (int code = load_dependencies(req.deps_code); code >= 0) {
      JS_FreeValue(ctx_, compiled);
      return code;
    }
    worker::mark_step("run: dependencies loaded");
  }

  JSValue result = JS_EvalFunction(ctx_, compiled);  // takes ownership of `compiled`
  if (JS_IsException(result)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
  bool tracking = false;
  if (mode == Mode::async_body || is_promise(result)) {
    // Await the completion value; its result (or rejection) is the run's.
    JSValue t = call_hook("track", 1, &result);
    if (JS_IsException(t)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
    JS_FreeValue(ctx_, t);
    tracking = true;
  } else if (!JS_IsUndefined(result)) {
    report_.value = inspect(result);
  }
  JS_FreeValue(ctx_, result);
  worker::mark_step("run: code evaluated");
  return event_loop(tracking, mode == Mode::async_body);
}

int JsRuntime::load_dependencies(const std::string& code) {
  JSValue r = call_hook("beginModules", 0, nullptr);
  if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
  JS_FreeValue(ctx_, r);
  JSValue v = JS_Eval(ctx_, code.c_str(), code.size(), kDepsFileName, JS_EVAL_TYPE_GLOBAL);
  if (JS_IsException(v)) {
    return fail_uncaught(JS_GetException(ctx_), "Error while loading the npm dependencies: ");
  }
  JS_FreeValue(ctx_, v);
  r = call_hook("endModules", 0, nullptr);
  if (JS_IsException(r)) return fail_uncaught(JS_GetException(ctx_), "Uncaught ");
  JS_FreeValue(ctx_, r);
  return -1;
}

int JsRuntime::run(const ipc::RunRequest& request) {
  try {
    return run_checked(request);
  } catch (const std::bad_alloc&) {
    report_.error_kind = "memory";
    report_.error_message = "out of memory";
  } catch (...) {
    report_.error_kind = "internal";
    report_.error_message = "internal error in the JavaScript worker";
  }
  return finish(1);
}

}  // namespace onemcp::js

