#include "policy/egress.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

namespace onemcp::policy {

namespace {

Error bad(std::string why) { return make_error("invalid URL: " + std::move(why)); }

bool is_c0_or_space(unsigned char c) { return c <= 0x20 || c == 0x7f; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
char lower_char(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_char(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_char(a[i]) != lower_char(b[i])) return false;
  }
  return true;
}

// Error messages reach the script; an 8 KiB scheme or port would only be noise there.
std::string clip(std::string_view s) {
  return s.size() <= 32 ? std::string(s) : std::string(s.substr(0, 32)) + "...";
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) return parts;
    start = pos + 1;
  }
}

// --- IPv4 literals, exactly as the WHATWG host parser reads them (a superset of inet_aton's
// everyday forms): 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the last part
// fills the remaining bytes, so 127.1 is 127.0.0.1 and 2130706433 is 127.0.0.1.

std::optional<uint64_t> parse_ipv4_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned radix = 10;
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    radix = 16;
    s.remove_prefix(2);
  } else if (s.size() >= 2 && s[0] == '0') {
    radix = 8;
    s.remove_prefix(1);
  }
  uint64_t v = 0;
  for (char c : s) {
    unsigned d;
    if (is_digit(c)) {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (d >= radix) return std::nullopt;
    // Saturate just past 32 bits: the value is already too big for any part, and this keeps
    // thousands of digits from overflowing.
    v = std::min<uint64_t>(v * radix + d, uint64_t{1} << 32);
  }
  return v;
}

// WHATWG "ends in a number": such a host is an IPv4 address or an error, never a domain.
bool ends_in_number(std::string_view host) {
  std::string_view last =
      host.substr(host.rfind('.') == std::string_view::npos ? 0 : host.rfind('.') + 1);
  if (last.empty()) return false;
  bool all_digits = true;
  for (char c : last) all_digits = all_digits && is_digit(c);
  return all_digits || parse_ipv4_number(last).has_value();
}

std::optional<uint32_t> parse_ipv4(std::string_view host) {
  std::vector<std::string_view> parts = split(host, '.');
  if (parts.size() > 4) return std::nullopt;
  std::vector<uint64_t> n;
  for (std::string_view p : parts) {
    auto v = parse_ipv4_number(p);
    if (!v) return std::nullopt;
    n.push_back(*v);
  }
  for (size_t i = 0; i + 1 < n.size(); ++i) {
    if (n[i] > 255) return std::nullopt;
  }
  if (n.back() >= (uint64_t{1} << (8 * (5 - n.size())))) return std::nullopt;
  uint64_t ip = n.back();
  for (size_t i = 0; i + 1 < n.size(); ++i) ip += n[i] << (8 * (3 - i));
  return static_cast<uint32_t>(ip);
}

std::string ipv4_text(uint32_t ip) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                ip & 255);
  return buf;
}

std::string ipv6_text(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN];
  return inet_ntop(AF_INET6, &a, buf, sizeof buf) ? std::string(buf) : std::string("?");
}

struct Host {
  std::string name;  // A-label domain, or the canonical address
  bool is_ip = false;
};

bool has_xn_label(std::string_view host) {
  for (std::string_view label : split(host, '.')) {
    if (label.size() >= 4 && iequals(label.substr(0, 4), "xn--")) return true;
  }
  return false;
}

// The WHATWG host parser for special schemes, stricter where strictness cannot let a denied
// host through: everything refused here is an error, never a domain.
Result<Host> parse_host(std::string_view raw) {
  if (raw.empty()) return bad("empty host");
  if (raw.front() == '[') {
    if (raw.size() < 3 || raw.back() != ']') return bad("invalid IPv6 address");
    std::string inner(raw.substr(1, raw.size() - 2));
    // A zone names an interface of the broker's host: never meaningful for a sandboxed script.
    if (inner.find('%') != std::string::npos) return bad("IPv6 zone ids are not allowed");
    in6_addr a;
    if (inet_pton(AF_INET6, inner.c_str(), &a) != 1) return bad("invalid IPv6 address");
    return Host{ipv6_text(a), true};
  }
  // Percent-decoding a host lets "%2e" or "%31%32%37..." become something the checks below never
  // saw; no real host needs it.
  if (raw.find('%') != std::string_view::npos) return bad("percent-encoded host");

  bool non_ascii = false;
  for (unsigned char c : raw) non_ascii = non_ascii || c >= 0x80;
  std::string ascii;
  // Pure ASCII without "xn--" labels only needs lower-casing under UTS #46; going through libidn2
  // anyway would refuse real hosts that WHATWG accepts (its hyphen checks reject "r3---sn-x").
  if (non_ascii || has_xn_label(raw)) {
    std::string in(raw);
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(in.c_str(), &out, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK) {
      idn2_free(out);
      return bad(std::string("host is not a valid domain name (") + idn2_strerror(rc) + ")");
    }
    ascii = out;
    idn2_free(out);
  } else {
    ascii = lower_ascii(raw);
  }

  if (!ascii.empty() && ascii.back() == '.') ascii.pop_back();
  if (ascii.empty()) return bad("empty host");
  if (ascii.size() > 253) return bad("host is longer than 253 characters");
  // Checked after IDNA: UTS #46 maps e.g. U+FF0F and U+FF20 to '/' and '@'.
  for (char c : ascii) {
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_' || c == '.')) {
      return bad("host contains a character not allowed in a domain name");
    }
  }
  for (std::string_view label : split(ascii, '.')) {
    if (label.empty()) return bad("host has an empty label");
    if (label.size() > 63) return bad("host has a label longer than 63 characters");
  }
  if (ends_in_number(ascii)) {
    auto ip = parse_ipv4(ascii);
    if (!ip) return bad("invalid IPv4 address");
    return Host{ipv4_text(*ip), true};
  }
  return Host{std::move(ascii), false};
}

// --- Paths and queries.

constexpr char kHex[] = "0123456789ABCDEF";

// WHATWG path and special-query percent-encode sets (C0 and space are refused earlier).
std::string encode(std::string_view s, bool path) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    bool enc = c >= 0x7f || c == '"' || c == '<' || c == '>' ||
               (path ? (c == '`' || c == '{' || c == '}' || c == '^') : c == '\'');
    if (enc) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool single_dot(std::string_view s) { return s == "." || iequals(s, "%2e"); }
bool double_dot(std::string_view s) {
  return s == ".." || iequals(s, ".%2e") || iequals(s, "%2e.") || iequals(s, "%2e%2e");
}

// `path` starts with '/'. Dot segments are resolved as WHATWG does ("%2e" counts as "."), so the
// path the server sees is the one serialize() shows.
std::string normalize_path(std::string_view path) {
  std::vector<std::string_view> segs = split(path.substr(1), '/');
  std::vector<std::string_view> out;
  for (size_t i = 0; i < segs.size(); ++i) {
    bool last = i + 1 == segs.size();
    if (double_dot(segs[i])) {
      if (!out.empty()) out.pop_back();
      if (last) out.push_back("");
    } else if (single_dot(segs[i])) {
      if (last) out.push_back("");
    } else {
      out.push_back(segs[i]);
    }
  }
  std::string s;
  for (std::string_view seg : out) s += "/" + encode(seg, true);
  return s.empty() ? "/" : s;
}

// "path?query" → normalized path + encoded query; a path that does not start with '/' is
// resolved against `dir` (the base path up to its last '/').
std::string path_and_query(std::string_view ref, std::string_view dir) {
  size_t q = ref.find('?');
  std::string_view p = ref.substr(0, q);
  std::string path =
      (p.empty() || p.front() != '/') ? std::string(dir) + std::string(p) : std::string(p);
  if (path.empty()) path = "/";
  std::string out = normalize_path(path);
  if (q != std::string_view::npos) out += "?" + encode(ref.substr(q + 1), false);
  return out;
}

uint16_t default_port(std::string_view scheme) { return scheme == "https" ? 443 : 80; }

// After "//": authority, then path and query.
Result<Url> parse_authority(std::string scheme, std::string_view rest) {
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  // Credentials are how "http://good.test@evil.test/" fools people and other parsers.
  if (authority.find('@') != std::string_view::npos) {
    return bad("credentials (user@host) are not allowed");
  }
  std::string_view host = authority, port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("invalid IPv6 address");
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("invalid IPv6 address");
      port = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    has_port = true;
  }

  Url u;
  u.scheme = std::move(scheme);
  u.port = default_port(u.scheme);
  if (has_port && !port.empty()) {  // "http://a:/" is the default port, as in WHATWG
    uint64_t v = 0;
    for (char c : port) {
      if (!is_digit(c)) return bad("invalid port " + clip(port));
      v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(c - '0'), 1u << 20);
    }
    if (v < 1 || v > 65535) return bad("port " + clip(port) + " is outside 1..65535");
    u.port = static_cast<uint16_t>(v);
  }
  auto h = parse_host(host);
  if (!h) return h.error();
  u.host = std::move(h->name);
  u.host_is_ip = h->is_ip;
  if (u.host_is_ip) u.ip = u.host;
  u.path_and_query = path_and_query(tail, "/");
  return u;
}

// A reference without "//" against a base: same origin, path and query per WHATWG.
Url parse_relative(std::string_view ref, const Url& base) {
  Url u = base;
  std::string_view bpq = base.path_and_query;
  std::string_view bpath = bpq.substr(0, bpq.find('?'));
  if (ref.empty()) return u;
  if (ref.front() == '?') {
    u.path_and_query = std::string(bpath) + "?" + encode(ref.substr(1), false);
  } else {
    u.path_and_query = path_and_query(ref, bpath.substr(0, bpath.rfind('/') + 1));
  }
  return u;
}

Result<Url> parse(std::string_view in, const Url* base) {
  if (in.size() > kMaxUrlBytes)
    return bad("longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  // Leading and trailing C0 controls and spaces are trimmed, as WHATWG does: they cannot change
  // which host is meant, and a Location header may carry them.
  while (!in.empty() && static_cast<unsigned char>(in.front()) <= 0x20) in.remove_prefix(1);
  while (!in.empty() && static_cast<unsigned char>(in.back()) <= 0x20) in.remove_suffix(1);
  // WHATWG silently drops tabs and newlines and reads '\' as '/'; another parser may not, and
  // the difference is a host confusion. Refuse both rather than guess.
  for (unsigned char c : in) {
    if (is_c0_or_space(c)) return bad("control character or space");
    if (c == '\\') return bad("backslash");
  }
  in = in.substr(0, in.find('#'));  // the fragment never leaves the client

  std::optional<std::string> scheme;
  std::string_view rest = in;
  if (!in.empty() && is_alpha(in.front())) {
    size_t i = 1;
    while (i < in.size() &&
           (is_alpha(in[i]) || is_digit(in[i]) || in[i] == '+' || in[i] == '-' || in[i] == '.')) {
      ++i;
    }
    if (i < in.size() && in[i] == ':') {
      scheme = lower_ascii(in.substr(0, i));
      rest = in.substr(i + 1);
    }
  }
  if (scheme) {
    if (*scheme != "http" && *scheme != "https") {
      return make_error("scheme: " + clip(*scheme) + " is not allowed");
    }
    if (rest.substr(0, 2) == "//") return parse_authority(*scheme, rest.substr(2));
    // WHATWG reads "http:/x" against an http base as a relative reference, and without one as
    // "http://x/"; the latter is refused rather than repaired.
    if (base && base->scheme == *scheme) return parse_relative(rest, *base);
    return bad("missing \"//\" after the scheme");
  }
  if (!base) return bad("relative URL without a base");
  if (rest.substr(0, 2) == "//") return parse_authority(base->scheme, rest.substr(2));
  return parse_relative(rest, *base);
}

// --- Private and special-purpose address ranges.

struct V4Range {
  uint32_t net;
  int len;
  const char* cidr;
  const char* name;
};

constexpr V4Range kV4Ranges[] = {
    {0x00000000, 8, "0.0.0.0/8", "this network"},
    {0x0a000000, 8, "10.0.0.0/8", "private"},
    {0x64400000, 10, "100.64.0.0/10", "shared address space"},
    {0x7f000000, 8, "127.0.0.0/8", "loopback"},
    {0xa9fe0000, 16, "169.254.0.0/16", "link-local, cloud metadata"},
    {0xac100000, 12, "172.16.0.0/12", "private"},
    {0xc0000000, 24, "192.0.0.0/24", "IETF protocol assignments"},
    {0xc0000200, 24, "192.0.2.0/24", "documentation"},
    {0xc0a80000, 16, "192.168.0.0/16", "private"},
    {0xc6120000, 15, "198.18.0.0/15", "benchmarking"},
    {0xc6336400, 24, "198.51.100.0/24", "documentation"},
    {0xcb007100, 24, "203.0.113.0/24", "documentation"},
    {0xe0000000, 4, "224.0.0.0/4", "multicast"},
    {0xffffffff, 32, "255.255.255.255/32", "broadcast"},  // before 240/4: the clearer name
    {0xf0000000, 4, "240.0.0.0/4", "reserved"},
};

const V4Range* v4_range(uint32_t ip) {
  for (const V4Range& r : kV4Ranges) {
    uint32_t mask = r.len == 0 ? 0 : ~uint32_t{0} << (32 - r.len);
    if ((ip & mask) == r.net) return &r;
  }
  return nullptr;
}

using V6Bytes = std::array<uint8_t, 16>;

bool prefix_match(const V6Bytes& a, const V6Bytes& p, int len) {
  for (int i = 0; i < len / 8; ++i) {
    if (a[i] != p[i]) return false;
  }
  if (len % 8 == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - len % 8));
  return (a[len / 8] & mask) == (p[len / 8] & mask);
}

struct V6Range {
  V6Bytes prefix;
  int len;
  const char* cidr;
  const char* name;
};

const V6Range kV6Ranges[] = {
    {{}, 128, "::/128", "unspecified"},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "::1/128", "loopback"},
    {{0xfc}, 7, "fc00::/7", "unique local"},
    {{0xfe, 0x80}, 10, "fe80::/10", "link-local"},
    {{0xfe, 0xc0}, 10, "fec0::/10", "site-local"},
    {{0xff}, 8, "ff00::/8", "multicast"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "2001:db8::/32", "documentation"},
    // Local-use NAT64 (RFC 8215) is denied whole rather than by its embedded address: the
    // operator picks the prefix length, so the IPv4 position is unknowable (RFC 6052 §2.2), and
    // IANA marks the block not globally reachable.
    {{0, 0x64, 0xff, 0x9b, 0, 1}, 48, "64:ff9b:1::/48", "local-use NAT64"},
};

// An IPv6 prefix that carries an IPv4 address in the four bytes from `offset`: what such an
// address reaches is decided by that IPv4 address.
struct V6Embedding {
  V6Bytes prefix;
  int len;
  const char* name;
  int offset;
  bool inverted;  // Teredo stores the client address with every bit flipped
};

const V6Embedding kV6Embeddings[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, "IPv4-mapped", 12, false},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}, 96, "IPv4-translated", 12, false},
    {{}, 96, "IPv4-compatible", 12, false},
    {{0, 0x64, 0xff, 0x9b}, 96, "NAT64", 12, false},
    {{0x20, 0x02}, 16, "6to4", 2, false},
    {{0x20, 0x01, 0, 0}, 32, "Teredo", 12, true},
};

struct Special {
  const char* cidr;
  const char* name;
  const char* embedding = nullptr;  // set when an embedded IPv4 address matched
  uint32_t v4 = 0;
};

std::optional<Special> classify_v4(uint32_t ip) {
  if (const V4Range* r = v4_range(ip)) return Special{r->cidr, r->name};
  return std::nullopt;
}

std::optional<Special> classify_v6(const V6Bytes& a) {
  for (const V6Range& r : kV6Ranges) {
    if (prefix_match(a, r.prefix, r.len)) return Special{r.cidr, r.name};
  }
  for (const V6Embedding& e : kV6Embeddings) {
    if (!prefix_match(a, e.prefix, e.len)) continue;
    const int o = e.offset;
    uint32_t v4 = (uint32_t{a[o]} << 24) | (uint32_t{a[o + 1]} << 16) | (uint32_t{a[o + 2]} << 8) |
                  uint32_t{a[o + 3]};
    if (e.inverted) v4 = ~v4;
    if (const V4Range* r = v4_range(v4)) return Special{r->cidr, r->name, e.name, v4};
    return std::nullopt;  // the embedded IPv4 address is public, and that is where it goes
  }
  return std::nullopt;
}

struct Classified {
  bool is_ip = false;
  std::string text;
  std::optional<Special> special;
};

Classified classify(const sockaddr_storage& addr) {
  Classified c;
  if (addr.ss_family == AF_INET) {
    sockaddr_in sin;
    std::memcpy(&sin, &addr, sizeof sin);
    uint32_t ip = ntohl(sin.sin_addr.s_addr);
    c.is_ip = true;
    c.text = ipv4_text(ip);
    c.special = classify_v4(ip);
  } else if (addr.ss_family == AF_INET6) {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &addr, sizeof sin6);
    V6Bytes b;
    std::memcpy(b.data(), &sin6.sin6_addr, 16);
    c.is_ip = true;
    c.text = ipv6_text(sin6.sin6_addr);
    c.special = classify_v6(b);
  }
  return c;
}

// A policy entry normalized like a URL host, so "Example.COM." and "0x7f.1" compare by meaning.
struct Pattern {
  bool wildcard = false;
  std::string host;
  bool is_ip = false;
};

std::optional<Pattern> normalize_pattern(std::string_view entry) {
  bool wildcard = entry.substr(0, 2) == "*.";
  auto h = parse_host(wildcard ? entry.substr(2) : entry);
  if (!h || (wildcard && h->is_ip)) return std::nullopt;  // "*.0.0.1" is not a set of addresses
  return Pattern{wildcard, std::move(h->name), h->is_ip};
}

// `fail_closed`: an entry that does not normalize still matches by its raw text, so a malformed
// denied entry can only deny more, and a malformed allowed one allows nothing.
bool entry_matches(std::string_view entry, const Url& u, bool fail_closed) {
  auto pat = normalize_pattern(entry);
  if (!pat) return fail_closed && domain_matches(entry, u.host);
  if (u.host_is_ip) return pat->is_ip && pat->host == u.ip;
  if (pat->is_ip) return false;
  return domain_matches(pat->wildcard ? "*." + pat->host : pat->host, u.host);
}

}  // namespace

std::string Url::serialize() const {
  std::string s = scheme + "://";
  s += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != default_port(scheme)) s += ":" + std::to_string(port);
  s += path_and_query;
  return s;
}

Result<Url> parse_url(std::string_view input, const Url* base) {
  try {
    return parse(input, base);
  } catch (const std::exception&) {  // allocation failure: no exception leaves the module
    return bad("out of memory");
  }
}

Decision decide_host(const NetworkPolicy& p, const Url& u) {
  if (u.scheme != "http" && u.scheme != "https") {
    return {Verdict::deny, "scheme: " + clip(u.scheme) + " is not allowed"};
  }
  if (u.host_is_ip && p.deny_ip_literals) return {Verdict::deny, "denyIpLiterals"};
  for (const std::string& d : p.denied_domains) {
    if (entry_matches(d, u, true)) return {Verdict::deny, "deniedDomains: " + d};
  }
  for (const std::string& a : p.allowed_domains) {
    if (entry_matches(a, u, false)) return {Verdict::allow, "allowedDomains: " + a};
  }
  return {Verdict::deny, "allowedDomains: no entry matches " + u.host};
}

Decision decide_address(const NetworkPolicy& p, const sockaddr_storage& addr) {
  Classified c = classify(addr);
  if (!c.is_ip) {
    return {Verdict::deny, "address: family " + std::to_string(addr.ss_family) + " is not IP"};
  }
  if (!p.block_private_ranges) return {Verdict::allow, "blockPrivateRanges: off"};
  if (!c.special) return {Verdict::allow, "blockPrivateRanges: " + c.text + " is public"};
  const Special& s = *c.special;
  std::string where = std::string(s.cidr) + " (" + s.name + ")";
  if (s.embedding) {
    return {Verdict::deny, "blockPrivateRanges: " + c.text + " embeds " + ipv4_text(s.v4) + " (" +
                               s.embedding + "), in " + where};
  }
  return {Verdict::deny, "blockPrivateRanges: " + c.text + " is in " + where};
}

bool is_private_or_special(const sockaddr_storage& addr) {
  Classified c = classify(addr);
  return !c.is_ip || c.special.has_value();
}

Result<sockaddr_storage> parse_ip_address(std::string_view text) {
  std::string s(text);
  sockaddr_storage ss{};
  sockaddr_in sin{};
  sockaddr_in6 sin6{};
  if (inet_pton(AF_INET, s.c_str(), &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    std::memcpy(&ss, &sin, sizeof sin);
    return ss;
  }
  if (inet_pton(AF_INET6, s.c_str(), &sin6.sin6_addr) == 1) {
    sin6.sin6_family = AF_INET6;
    std::memcpy(&ss, &sin6, sizeof sin6);
    return ss;
  }
  return make_error("not an IP address: " + clip(text));
}

Result<sockaddr_storage> literal_address(const Url& u) {
  if (!u.host_is_ip) return make_error("not an IP literal: " + clip(u.host));
  return parse_ip_address(u.ip);
}

}  // namespace onemcp::policy
