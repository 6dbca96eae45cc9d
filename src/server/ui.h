// server/ui.h — the web page served at GET / (ui/ in the source tree: HTML, a stylesheet and a
// script bundle made by esbuild at build time, embedded in the binary). The page runs code through
// POST /mcp and reads the server's other endpoints; it loads nothing from anywhere else.
// Thread-safety: returns static data.
#pragma once

#include <string>
#include <string_view>

namespace onemcp::server {

struct UiAsset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
  std::string etag;  // "\"<16 hex digits of the body's SHA-256>\""
};

// The page's files by URL path: "/", "/ui/app.js", "/ui/app.css", "/favicon.svg"; else nullptr.
const UiAsset* ui_asset(std::string_view path);

// The Content-Security-Policy the page is served with: its own files only, no inline script or
// style, requests to this server only.
inline constexpr std::string_view kUiContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace onemcp::server
