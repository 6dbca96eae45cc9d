// broker/fetcher.cc — one fetch = a loop of hops; each hop is vetted, then performed by a fresh
// curl easy handle that can only connect to the addresses vetted for it.
// Thread-safety: see fetcher.h. Curl callbacks are noexcept trampolines: nothing unwinds
// through libcurl; failures are recorded in the hop's state and the transfer is aborted.
#include "broker/fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>

#include "base/c_ptr.h"
#include "policy/egress.h"

namespace onemcp::broker {
namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;

using CurlHandle = CPtr<CURL, curl_easy_cleanup>;
using Slist = CPtr<curl_slist, curl_slist_free_all>;
using CurlUrl = CPtr<CURLU, curl_url_cleanup>;
using CurlStr = CPtr<char, curl_free>;

// curl_global_init is not thread-safe on every curl build: do it exactly once (a function-local
// static is initialised by one thread), before the first handle.
bool curl_ready() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// RFC 9110 token: what a method or a header name may be made of.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) == std::string_view::npos) return false;
  }
  return true;
}

// Headers the broker owns: framing and connection management (a script setting them could
// smuggle a second request or desynchronise the connection), the target (Host must match the
// vetted URL), proxies, and Accept-Encoding (the broker decodes, so it negotiates).
bool is_forbidden_header(std::string_view name) {
  static constexpr std::string_view kForbidden[] = {
      "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
      "te",   "trailer",        "expect",            "accept-encoding"};
  const std::string n = to_lower(name);
  if (n.starts_with("proxy-")) return true;
  return std::find(std::begin(kForbidden), std::end(kForbidden), n) != std::end(kForbidden);
}

// The scheme a reference names explicitly ("file:///etc/passwd" → "file"), if any, so a
// redirect to another scheme gets its own message whatever the parser thinks of the rest.
std::optional<std::string> explicit_scheme(std::string_view ref) {
  std::string s;
  for (char c : ref) {
    if (c == '\t' || c == '\n' || c == '\r') continue;  // the URL parser strips these too
    s.push_back(c);
  }
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) <= 0x20) ++i;
  size_t start = i;
  if (i >= s.size() || !((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')) return std::nullopt;
  for (++i; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':') return to_lower(std::string_view(s).substr(start, i - start));
    bool ok = ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.';
    if (!ok) return std::nullopt;
  }
  return std::nullopt;
}

bool is_http_scheme(std::string_view s) { return s == "http" || s == "https"; }

std::string strip_brackets(std::string_view h) {
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') return std::string(h.substr(1, h.size() - 2));
  return std::string(h);
}

bool same_origin(const policy::Url& a, const policy::Url& b) {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

void set_port(sockaddr_storage& s, uint16_t port) {
  if (s.ss_family == AF_INET) reinterpret_cast<sockaddr_in&>(s).sin_port = htons(port);
  if (s.ss_family == AF_INET6) reinterpret_cast<sockaddr_in6&>(s).sin6_port = htons(port);
}

uint16_t port_of(const sockaddr_storage& s) {
  if (s.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(s).sin_port);
  if (s.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(s).sin6_port);
  return 0;
}

// ::ffff:a.b.c.d connects to a.b.c.d: compare such addresses in their IPv4 form.
sockaddr_storage unmapped(const sockaddr_storage& s) {
  if (s.ss_family != AF_INET6) return s;
  const auto& in6 = reinterpret_cast<const sockaddr_in6&>(s);
  if (!IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) return s;
  sockaddr_storage out{};
  auto& in = reinterpret_cast<sockaddr_in&>(out);
  in.sin_family = AF_INET;
  in.sin_port = in6.sin6_port;
  std::memcpy(&in.sin_addr, &in6.sin6_addr.s6_addr[12], 4);
  return out;
}

bool is_denied_address(const sockaddr_storage& addr, const std::vector<sockaddr_storage>& denied) {
  const sockaddr_storage a = unmapped(addr);
  for (const auto& entry : denied) {
    const sockaddr_storage d = unmapped(entry);
    sockaddr_storage probe = d;
    if (port_of(d) == 0) set_port(probe, port_of(a));
    if (same_endpoint(probe, a)) return true;
  }
  return false;
}

std::string blocked(const policy::Decision& d) { return "blocked by network policy (" + d.rule + ")"; }

// State of one hop's transfer, shared with the curl callbacks through their user pointers.
struct Hop {
  const std::vector<sockaddr_storage>* vetted = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  uint64_t max_body = 0;
  uint32_t max_header_bytes = 0;

  int status = 0;
  std::string status_text;
  Headers headers;
  std::string body;
  size_t header_bytes = 0;

  bool body_too_large = false;
  bool headers_too_large = false;
  bool unvetted_connect = false;
  bool out_of_memory = false;

  bool is_vetted(const sockaddr_storage& s) const {
    for (const auto& v : *vetted)
      if (same_endpoint(v, s)) return true;
    return false;
  }
};

// Called by curl about once a second and on every transfer step: a non-zero return aborts.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) noexcept {
  auto* hop = static_cast<Hop*>(user);
  return hop->cancel && hop->cancel->load() ? 1 : 0;
}

size_t on_body(char* data, size_t size, size_t n, void* user) noexcept {
  auto* hop = static_cast<Hop*>(user);
  const size_t len = size * n;
  // Decoded bytes: curl calls this after Content-Encoding is undone, so a compression bomb
  // stops here as soon as it expands past the cap, not after it is fully inflated.
  if (hop->body.size() + len > hop->max_body) {
    hop->body_too_large = true;
    return 0;  // aborts with CURLE_WRITE_ERROR
  }
  try {
    hop->body.append(data, len);
  } catch (...) {
    hop->out_of_memory = true;
    return 0;
  }
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) noexcept {
  auto* hop = static_cast<Hop*>(user);
  const size_t len = size * n;
  hop->header_bytes += len;
  if (hop->header_bytes > hop->max_header_bytes) {
    hop->headers_too_large = true;
    return 0;
  }
  try {
    std::string_view line = trim(std::string_view(data, len));
    if (line.starts_with("HTTP/")) {
      // A new response begins (after a 1xx, curl reports the next status line): start over.
      hop->headers.clear();
      hop->status_text.clear();
      size_t sp = line.find(' ');
      std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
      size_t sp2 = rest.find(' ');
      hop->status_text = std::string(sp2 == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp2 + 1)));
      return len;
    }
    if (line.empty()) return len;
    if ((data[0] == ' ' || data[0] == '\t') && !hop->headers.empty()) {
      // Obsolete line folding: a continuation of the previous value.
      hop->headers.back().second += ' ';
      hop->headers.back().second += line;
      return len;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return len;  // not a header; curl already accepted it
    hop->headers.emplace_back(to_lower(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  } catch (...) {
    hop->out_of_memory = true;
    return 0;
  }
  return len;
}

// First line of defence past the pin: curl asks us for every socket it will connect, with the
// address it will connect to; only a vetted address gets one.
curl_socket_t on_open_socket(void* user, curlsocktype purpose, curl_sockaddr* a) noexcept {
  auto* hop = static_cast<Hop*>(user);
  sockaddr_storage s{};
  if (purpose != CURLSOCKTYPE_IPCXN || a->addrlen > sizeof s) {
    hop->unvetted_connect = true;
    return CURL_SOCKET_BAD;
  }
  std::memcpy(&s, &a->addr, a->addrlen);
  if (!hop->is_vetted(s)) {
    hop->unvetted_connect = true;
    return CURL_SOCKET_BAD;
  }
  return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

// Second check, once connected and before a byte of the request is sent: the peer curl reports
// must be vetted too.
int on_prereq(void* user, char* ip, char* /*local_ip*/, int port, int /*local_port*/) noexcept {
  auto* hop = static_cast<Hop*>(user);
  if (!ip || port <= 0 || port > 65535) {
    hop->unvetted_connect = true;
    return CURL_PREREQFUNC_ABORT;
  }
  auto peer = policy::parse_ip_address(ip);
  if (!peer) {
    hop->unvetted_connect = true;
    return CURL_PREREQFUNC_ABORT;
  }
  set_port(peer.value(), static_cast<uint16_t>(port));
  if (!hop->is_vetted(peer.value())) {
    hop->unvetted_connect = true;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

// The in-flight slot of one fetch; released on every path out.
class Slot {
 public:
  Slot(std::atomic<uint32_t>& n, uint32_t max) : n_(n) {
    uint32_t cur = n_.load();
    do {
      if (cur >= max) return;
    } while (!n_.compare_exchange_weak(cur, cur + 1));
    held_ = true;
  }
  ~Slot() {
    if (held_) n_.fetch_sub(1);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  bool held() const { return held_; }

 private:
  std::atomic<uint32_t>& n_;
  bool held_ = false;
};

#define TRY_SETOPT(h, opt, val)                                                            \
  do {                                                                                     \
    if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)                                   \
      return make_error(std::string("fetch failed: could not set ") + #opt);               \
  } while (0)

Status append(Slist& list, const std::string& line) {
  curl_slist* head = curl_slist_append(list.get(), line.c_str());
  if (!head) return make_error("fetch failed: out of memory");
  (void)list.release();  // curl_slist_append returned the same list, now one longer
  list.reset(head);
  return {};
}

}  // namespace

Fetcher::Fetcher(policy::NetworkPolicy policy, Resolver& resolver, FetchLimits limits)
    : policy_(std::move(policy)), resolver_(resolver), limits_(limits) {
  (void)curl_ready();
}

Result<FetchResponse> Fetcher::fetch(const FetchRequest& req) {
  Slot slot(in_flight_, limits_.max_concurrent);
  if (!slot.held()) return make_error("too many concurrent requests (" + std::to_string(limits_.max_concurrent) + ")");
  if (!curl_ready()) return make_error("fetch failed: the HTTP client could not be initialised");
  if (req.timeout_ms == 0) return make_error("timeout must be a positive number of milliseconds");
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(req.timeout_ms);
  const std::string timed_out = "timed out after " + std::to_string(req.timeout_ms) + " ms";

  // Method: a token; the usual ones normalised like fetch does; the ones that turn the
  // connection into something else refused.
  if (!is_token(req.method)) return make_error("invalid request method: " + req.method);
  std::string method = req.method;
  for (std::string_view m : {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"})
    if (iequals(method, m)) method = std::string(m);
  for (std::string_view m : {"CONNECT", "TRACE", "TRACK"})
    if (iequals(method, m)) return make_error("request method " + std::string(m) + " is not allowed");

  Headers headers;
  size_t header_bytes = 0;
  for (const auto& [name, value] : req.headers) {
    // The same cap as on responses: a script cannot make the broker send megabytes of headers.
    header_bytes += name.size() + value.size() + 4;
    if (header_bytes > limits_.max_header_bytes)
      return make_error("request headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
    if (!is_token(name)) return make_error("invalid request header name: " + name);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return make_error("invalid value for request header " + name);
    if (is_forbidden_header(name)) continue;
    headers.emplace_back(name, std::string(trim(value)));
  }
  std::string body = req.body;
  if (!body.empty() && (method == "GET" || method == "HEAD"))
    return make_error("a " + method + " request cannot have a body");
  if (body.size() > policy_.max_body_bytes)
    return make_error("request body exceeds maxBodyBytes (" + std::to_string(policy_.max_body_bytes) + ")");

  auto parsed = policy::parse_url(req.url);
  if (!parsed) return parsed.error();
  policy::Url url = std::move(parsed).value();
  if (!is_http_scheme(url.scheme)) return make_error("only http and https URLs can be fetched: " + url.serialize());

  for (uint32_t redirects = 0;; ++redirects) {
    const std::string url_text = url.serialize();

    // 1. The host, by name or literal, before anything touches the network.
    policy::Decision hd = policy::decide_host(policy_, url);
    if (!hd.allowed()) return make_error(blocked(hd) + ": " + url_text);

    // 2. Resolve here, once per hop (a rebinding answer on a later hop is vetted like any other).
    std::vector<sockaddr_storage> addrs;
    if (url.host_is_ip) {
      auto a = policy::literal_address(url);
      if (!a) return a.error();
      addrs.push_back(a.value());
      set_port(addrs.back(), url.port);
    } else {
      auto r = resolver_.resolve(url.host, url.port);
      if (!r) return r.error();
      addrs = std::move(r).value();
      if (addrs.empty()) return make_error("could not resolve host " + url.host + ": no addresses");
      for (auto& a : addrs) set_port(a, url.port);  // the port is the URL's, whatever the resolver said
    }
    // 3. Every address: one denied address denies the hop (a mixed answer is a rebinding tell,
    // and curl may fall back to any of them).
    for (const auto& a : addrs) {
      if (is_denied_address(a, limits_.denied_addresses))
        return make_error("blocked by network policy (" + address_text(a) + " is reserved): " + url_text);
      policy::Decision ad = policy::decide_address(policy_, a);
      if (!ad.allowed()) return make_error(blocked(ad) + ": " + url_text);
    }
    if (Clock::now() >= deadline) return make_error(timed_out);

    // 4. The hop itself.
    Hop hop;
    hop.vetted = &addrs;
    hop.max_body = policy_.max_body_bytes;
    hop.max_header_bytes = limits_.max_header_bytes;

    CurlHandle h(curl_easy_init());
    if (!h) return make_error("fetch failed: out of memory");
    CURL* c = h.get();

    // Hand curl the URL already parsed by curl's own parser from our serialization, and check
    // both parsers agree on host and port: a disagreement would mean curl targets a host that
    // was not vetted.
    CurlUrl cu(curl_url());
    if (!cu || curl_url_set(cu.get(), CURLUPART_URL, url_text.c_str(), 0) != CURLUE_OK)
      return make_error("fetch failed: URL not accepted by the HTTP client: " + url_text);
    {
      char* raw_host = nullptr;
      char* raw_port = nullptr;
      bool ok = curl_url_get(cu.get(), CURLUPART_HOST, &raw_host, 0) == CURLUE_OK;
      CurlStr host_s(raw_host);
      ok = ok && curl_url_get(cu.get(), CURLUPART_PORT, &raw_port, CURLU_DEFAULT_PORT) == CURLUE_OK;
      CurlStr port_s(raw_port);
      if (!ok || !iequals(strip_brackets(host_s.get()), strip_brackets(url.host)) ||
          std::string(port_s.get()) != std::to_string(url.port))
        return make_error("fetch failed: ambiguous URL refused: " + url_text);
    }
    TRY_SETOPT(c, CURLOPT_CURLU, cu.get());

    // Pin: curl's resolver cache for this handle holds exactly the vetted addresses, so it never
    // resolves the name again itself. IP literals need no pin.
    Slist pin;
    if (!url.host_is_ip) {
      std::string entry = url.host + ":" + std::to_string(url.port) + ":";
      for (size_t i = 0; i < addrs.size(); ++i) {
        if (i) entry += ',';
        std::string a = address_text(addrs[i]);
        entry += addrs[i].ss_family == AF_INET6 ? "[" + a + "]" : a;
      }
      if (auto s = append(pin, entry); !s) return s.error();
      TRY_SETOPT(c, CURLOPT_RESOLVE, pin.get());
    }
    TRY_SETOPT(c, CURLOPT_OPENSOCKETFUNCTION, &on_open_socket);
    TRY_SETOPT(c, CURLOPT_OPENSOCKETDATA, &hop);
    TRY_SETOPT(c, CURLOPT_PREREQFUNCTION, &on_prereq);
    TRY_SETOPT(c, CURLOPT_PREREQDATA, &hop);

    TRY_SETOPT(c, CURLOPT_PROTOCOLS_STR, "http,https");
    TRY_SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    TRY_SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);  // redirects are hops of ours, each vetted
    // No proxy, whatever the environment says: an explicit empty proxy disables the *_proxy
    // variables, and NOPROXY "*" covers any that slips through.
    TRY_SETOPT(c, CURLOPT_PROXY, "");
    TRY_SETOPT(c, CURLOPT_NOPROXY, "*");
    TRY_SETOPT(c, CURLOPT_NOSIGNAL, 1L);
    TRY_SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
    TRY_SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!limits_.ca_file.empty()) {
      // This file alone: the built-in CA directory is switched off too.
      TRY_SETOPT(c, CURLOPT_CAINFO, limits_.ca_file.c_str());
      TRY_SETOPT(c, CURLOPT_CAPATH, static_cast<const char*>(nullptr));
    }
    TRY_SETOPT(c, CURLOPT_ACCEPT_ENCODING, "");  // every encoding curl decodes; body is decoded
    TRY_SETOPT(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));

    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    const long hop_timeout = std::max<long>(1, static_cast<long>(remaining));
    TRY_SETOPT(c, CURLOPT_TIMEOUT_MS, hop_timeout);
    TRY_SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, std::min<long>(hop_timeout, limits_.connect_timeout_ms));

    hop.cancel = req.cancel;
    TRY_SETOPT(c, CURLOPT_NOPROGRESS, 0L);
    TRY_SETOPT(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
    TRY_SETOPT(c, CURLOPT_XFERINFODATA, &hop);
    TRY_SETOPT(c, CURLOPT_WRITEFUNCTION, &on_body);
    TRY_SETOPT(c, CURLOPT_WRITEDATA, &hop);
    TRY_SETOPT(c, CURLOPT_HEADERFUNCTION, &on_header);
    TRY_SETOPT(c, CURLOPT_HEADERDATA, &hop);

    if (method == "HEAD") {
      TRY_SETOPT(c, CURLOPT_NOBODY, 1L);
    } else if (method == "GET") {
      TRY_SETOPT(c, CURLOPT_HTTPGET, 1L);
    } else {
      if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
        // POSTFIELDS is not copied by curl: `body` outlives the transfer.
        TRY_SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        TRY_SETOPT(c, CURLOPT_POSTFIELDS, body.data());
      }
      if (method != "POST") TRY_SETOPT(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    }

    Slist header_list;
    bool has_user_agent = false;
    for (const auto& [name, value] : headers) {
      has_user_agent = has_user_agent || iequals(name, "user-agent");
      // "Name;" is curl's spelling of a header sent with an empty value ("Name:" would remove it).
      if (auto s = append(header_list, value.empty() ? name + ";" : name + ": " + value); !s) return s.error();
    }
    if (!has_user_agent)
      if (auto s = append(header_list, "User-Agent: 1mcp-broker"); !s) return s.error();
    // No "Expect: 100-continue" round trip: the body is in memory and already within limits.
    if (auto s = append(header_list, "Expect:"); !s) return s.error();
    TRY_SETOPT(c, CURLOPT_HTTPHEADER, header_list.get());

    char errbuf[CURL_ERROR_SIZE] = {};
    TRY_SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
      if (req.cancel && req.cancel->load()) return make_error("cancelled: the run ended");
      if (hop.body_too_large)
        return make_error("response body exceeds maxBodyBytes (" + std::to_string(policy_.max_body_bytes) + ")");
      if (hop.headers_too_large)
        return make_error("response headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
      if (hop.unvetted_connect)
        return make_error("blocked by network policy (connection to an address that was not vetted): " + url_text);
      if (hop.out_of_memory) return make_error("fetch failed: out of memory");
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        // A connect timeout shorter than what was left of the request has its own message.
        if (elapsed + 50 < static_cast<long long>(req.timeout_ms) &&
            static_cast<long long>(limits_.connect_timeout_ms) < remaining)
          return make_error("connect timed out after " + std::to_string(limits_.connect_timeout_ms) + " ms: " + url_text);
        return make_error(timed_out);
      }
      return make_error(std::string("fetch failed: ") + (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    hop.status = static_cast<int>(status);

    const std::string* location = nullptr;
    for (const auto& [name, value] : hop.headers)
      if (name == "location") {
        location = &value;
        break;
      }
    const bool is_redirect = status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    if (!is_redirect || !location) {
      FetchResponse out;
      out.status = hop.status;
      out.status_text = std::move(hop.status_text);
      out.headers = std::move(hop.headers);
      out.body = std::move(hop.body);
      out.url = url_text;
      out.redirected = redirects > 0;
      return out;
    }

    // A redirect: the next hop, per the fetch standard's "HTTP-redirect fetch".
    if (redirects >= policy_.max_redirects)
      return make_error("too many redirects (maxRedirects " + std::to_string(policy_.max_redirects) + ")");
    if (auto scheme = explicit_scheme(*location); scheme && !is_http_scheme(*scheme))
      return make_error("redirect to a non-http(s) URL is not allowed");
    auto next = policy::parse_url(*location, &url);
    if (!next) return make_error("invalid redirect location: " + next.error().message);
    if (!is_http_scheme(next->scheme)) return make_error("redirect to a non-http(s) URL is not allowed");

    if (((status == 301 || status == 302) && method == "POST") ||
        (status == 303 && method != "GET" && method != "HEAD")) {
      method = "GET";
      body.clear();
      std::erase_if(headers, [](const auto& h) {
        for (std::string_view n : {"content-type", "content-encoding", "content-language", "content-location"})
          if (iequals(h.first, n)) return true;
        return false;
      });
    }
    // Credentials the script gave for one origin are not handed to another.
    if (!same_origin(url, *next))
      std::erase_if(headers, [](const auto& h) { return iequals(h.first, "authorization") || iequals(h.first, "cookie"); });
    url = std::move(next).value();
  }
}

#undef TRY_SETOPT

namespace {

// Bytes a tunnel host may hold: what a DNS name or an IP literal is made of (non-ASCII for IDNA).
// Anything else ('/', '@', '?', '#', '%', '\\', brackets, spaces) could make the URL built from
// it name another host than the one asked for.
bool plausible_tunnel_host(const std::string& h) {
  if (h.empty() || h.size() > 253 * 4) return false;
  for (unsigned char c : h) {
    if (c >= 0x80) continue;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
    if (c == '-' || c == '.' || c == '_' || c == ':') continue;
    return false;
  }
  return true;
}

std::string endpoint_text(const std::string& host, uint16_t port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

socklen_t addr_len(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? socklen_t(sizeof(sockaddr_in6)) : socklen_t(sizeof(sockaddr_in));
}

}  // namespace

Result<UniqueFd> Fetcher::connect(const std::string& host, uint16_t port, uint32_t timeout_ms,
                                  const std::atomic<bool>* cancel) {
  Slot slot(in_flight_, limits_.max_concurrent);
  if (!slot.held()) return make_error("too many concurrent requests (" + std::to_string(limits_.max_concurrent) + ")");
  if (timeout_ms == 0) return make_error("timeout must be a positive number of milliseconds");
  if (port == 0) return make_error("invalid port 0");
  const std::string target = endpoint_text(host, port);
  if (!plausible_tunnel_host(host)) return make_error("invalid host: " + target);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);

  // The same parser as fetch, so the host that is vetted is the host a fetch would vet.
  auto parsed = policy::parse_url("https://" + target + "/");
  if (!parsed) return make_error("invalid host: " + target + " (" + parsed.error().message + ")");
  const policy::Url url = std::move(parsed).value();
  if (url.port != port) return make_error("invalid host: " + target);
  const std::string shown = endpoint_text(url.host, port);

  policy::Decision hd = policy::decide_host(policy_, url);
  if (!hd.allowed()) return make_error(blocked(hd) + ": " + shown);

  std::vector<sockaddr_storage> addrs;
  if (url.host_is_ip) {
    auto a = policy::literal_address(url);
    if (!a) return a.error();
    addrs.push_back(a.value());
  } else {
    auto r = resolver_.resolve(url.host, port);
    if (!r) return r.error();
    addrs = std::move(r).value();
    if (addrs.empty()) return make_error("could not resolve host " + url.host + ": no addresses");
  }
  for (auto& a : addrs) set_port(a, port);
  // Every address, as for fetch: one denied address denies the tunnel.
  for (const auto& a : addrs) {
    if (is_denied_address(a, limits_.denied_addresses))
      return make_error("blocked by network policy (" + address_text(a) + " is reserved): " + shown);
    policy::Decision ad = policy::decide_address(policy_, a);
    if (!ad.allowed()) return make_error(blocked(ad) + ": " + shown);
  }

  std::string last_error = "no address";
  for (const auto& a : addrs) {
    if (cancel && cancel->load()) return make_error("cancelled: the run ended");
    const auto now = Clock::now();
    if (now >= deadline) break;
    const auto attempt_end =
        std::min(deadline, now + std::chrono::milliseconds(limits_.connect_timeout_ms));
    UniqueFd fd(::socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return make_error(std::string("connect failed: socket: ") + std::strerror(errno));
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), addr_len(a));
    if (rc != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    bool connected = rc == 0, failed = false;
    while (!connected && !failed) {
      if (cancel && cancel->load()) return make_error("cancelled: the run ended");
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(attempt_end - Clock::now()).count();
      if (left <= 0) {
        last_error = "connect timed out after " + std::to_string(limits_.connect_timeout_ms) + " ms";
        failed = true;
        break;
      }
      // Short slices: a cancelled run must not wait out a connect timeout.
      pollfd p{fd.get(), POLLOUT, 0};
      int n = ::poll(&p, 1, int(std::min<long long>(left, 50)));
      if (n < 0 && errno != EINTR) {
        last_error = std::strerror(errno);
        failed = true;
      } else if (n > 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) {
          last_error = std::strerror(err);
          failed = true;
        } else {
          connected = true;
        }
      }
    }
    if (!connected) continue;
    // The peer must be the vetted address we dialled.
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    if (::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &plen) != 0 || !same_endpoint(peer, a))
      return make_error("blocked by network policy (connection to an address that was not vetted): " + shown);
    return fd;
  }
  if (Clock::now() >= deadline && last_error == "no address")
    return make_error("timed out after " + std::to_string(timeout_ms) + " ms");
  return make_error("connect failed: " + shown + ": " + last_error);
}

}  // namespace onemcp::broker
