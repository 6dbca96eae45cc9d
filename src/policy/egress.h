// policy/egress.h — egress decisions as pure logic: URL parsing, host and address verdicts.
// Thread-safety: pure functions and value types; no shared state, no I/O (libidn2 is reentrant).
//
// The broker applies, for the request and for every redirect hop (DESIGN.md §4):
//   1. parse_url()        — one parser for every URL, so what is vetted is what is fetched;
//   2. decide_host()      — scheme, IP literals, deniedDomains, then allowedDomains;
//   3. decide_address()   — every resolved A/AAAA (and an allowed IP literal) against the
//                           private/special ranges; the broker then connects to that vetted
//                           address only, never re-resolving (DNS rebinding).
// Resolution itself is not here, so tests can drive every step without a resolver.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "policy/config.h"

namespace onemcp::policy {

// Inputs longer than this are refused: no legitimate request or Location needs more, and a cap
// bounds the work an untrusted script can ask of the parser.
inline constexpr size_t kMaxUrlBytes = 8192;

// A parsed, normalized http(s) URL. Only URLs produced by parse_url() are meaningful here.
struct Url {
  std::string scheme;  // "http" | "https"
  // Lower-case; a domain is its IDNA A-label form without a trailing dot; an IP literal is the
  // canonical address (same as `ip`), an IPv6 one without brackets.
  std::string host;
  uint16_t port = 0;           // always set: 80/443 when the URL had none
  std::string path_and_query;  // starts with "/", dot segments removed; the fragment is dropped
  bool host_is_ip = false;
  std::string ip;  // canonical textual address ("127.0.0.1", "::ffff:127.0.0.1") when host_is_ip

  // "scheme://host[:port]/path?query": brackets around IPv6, the port only when not the default.
  std::string serialize() const;
  bool operator==(const Url&) const = default;
};

// Parses `input` (absolute, or relative to `base` — a redirect Location) the way the WHATWG URL
// standard parses special schemes, but refuses instead of repairing whatever could make two
// parsers disagree about the host:
//   refused: userinfo ("a@b"), any backslash, control characters or spaces inside (ends are
//     trimmed), schemes other than http/https, a missing "//" after the scheme (unless relative
//     to a base of the same scheme), an empty host, any '%' in the host, IPv6 zone ids, ports
//     outside 1..65535, hosts that are not letters/digits/'-'/'_' after IDNA, empty labels,
//     invalid IPv4 literals ("1.2.3.4.5", "256.0.0.1", "example.123": WHATWG treats a host whose
//     last label is a number as an IPv4 address, so these are errors, never domains), and
//     inputs over kMaxUrlBytes.
//   normalized: scheme and host lower-case; non-ASCII hosts and "xn--" labels through UTS #46
//     (non-transitional, NFC); one trailing dot stripped; every IPv4 form WHATWG and inet_aton
//     accept (decimal, hex, octal, 1–4 parts) and IPv6 (including v4-mapped) become `ip`;
//     default port; path "/" when empty; dot segments (also "%2e") resolved; unsafe path and
//     query bytes percent-encoded; the fragment dropped.
// `base`, when given, must itself come from parse_url().
Result<Url> parse_url(std::string_view input, const Url* base = nullptr);

enum class Verdict { allow, deny };

struct Decision {
  Verdict verdict = Verdict::deny;
  std::string rule;  // the rule that decided, for the script's error and the audit log
  bool allowed() const { return verdict == Verdict::allow; }
};

// Host-level decision, before any resolution. In order:
//   scheme other than http/https → deny "scheme: ftp is not allowed";
//   IP literal and denyIpLiterals → deny "denyIpLiterals";
//   a deniedDomains entry matches → deny "deniedDomains: <entry>";
//   an allowedDomains entry matches → allow "allowedDomains: <entry>";
//   otherwise (including an empty allowedDomains) → deny "allowedDomains: no entry matches <host>".
// Matching: "example.com" matches that host only. "*.example.com" matches every subdomain on a
// label boundary (a.example.com, a.b.example.com) but never evil-example.com and never the apex
// example.com itself: the apex must be listed separately. Entries are normalized like URL hosts
// (case, trailing dot, IDNA), so "Example.COM." equals "example.com". With denyIpLiterals off, an
// IP literal is still subject to both lists, matched only by an exact entry that is the same
// address in any IPv4 notation ("10.0.0.5" matches http://0xa000005/); wildcards never match an
// address, and the config schema admits no IPv6 entries, so IPv6 literals are never allowed.
Decision decide_host(const NetworkPolicy& p, const Url& u);

// Address-level decision for EVERY resolved address, and for an IP literal that decide_host
// allowed. With blockPrivateRanges on, denies the private and special-purpose ranges:
//   IPv4: 0/8, 10/8, 100.64/10, 127/8, 169.254/16 (cloud metadata), 172.16/12, 192.0.0/24,
//     192.0.2/24, 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4, 240/4 and
//     255.255.255.255;
//   IPv6: ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 2001:db8::/32, and all of
//     64:ff9b:1::/48 (local-use NAT64: where its IPv4 address sits depends on the operator's
//     prefix length, so it cannot be checked by the embedded address; it is not global anyway);
//   and any IPv6 address that embeds an IPv4 one in that list: ::ffff:0:0/96 (mapped),
//     ::ffff:0:0:0/96 (translated), ::/96 (compatible), 64:ff9b::/96 (NAT64), 2002::/16 (6to4,
//     bits 16..47), 2001::/32 (Teredo, the inverted client address in the low 32 bits).
// Rules: "blockPrivateRanges: 127.0.0.1 is in 127.0.0.0/8 (loopback)",
//   "blockPrivateRanges: ::ffff:10.0.0.1 embeds 10.0.0.1 (IPv4-mapped), in 10.0.0.0/8 (private)",
//   "blockPrivateRanges: 8.8.8.8 is public", "blockPrivateRanges: off".
// An address that is neither IPv4 nor IPv6 is always denied ("address: family N is not IP").
// The port in `addr` is ignored.
Decision decide_address(const NetworkPolicy& p, const sockaddr_storage& addr);

// Whether decide_address() would deny `addr` with blockPrivateRanges on.
bool is_private_or_special(const sockaddr_storage& addr);

// The address of an IP-literal URL (port 0), for decide_address() and the connect.
Result<sockaddr_storage> literal_address(const Url& u);

// A strict textual IPv4 (dotted decimal) or IPv6 address (no brackets, no zone), port 0.
Result<sockaddr_storage> parse_ip_address(std::string_view text);

}  // namespace onemcp::policy
