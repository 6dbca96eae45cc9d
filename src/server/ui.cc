#include "server/ui.h"

#include <array>
#include <string>

#include "base/sha256.h"

namespace onemcp::server {
namespace {

// Generated at build time from ui/ (src/server/CMakeLists.txt). Arrays, not string_views: the
// length of a literal this long is past the compiler's constexpr evaluation limit.
constexpr char kIndexHtml[] =
#include "ui/index.html.inc"
    ;
constexpr char kAppJs[] =
#include "ui/app.js.inc"
    ;
constexpr char kAppCss[] =
#include "ui/app.css.inc"
    ;
constexpr char kFavicon[] =
#include "ui/favicon.svg.inc"
    ;

constexpr std::string_view view(const char* text, size_t size) { return {text, size - 1}; }

}  // namespace

const UiAsset* ui_asset(std::string_view path) {
  static const std::array<UiAsset, 4> assets = [] {
    std::array<UiAsset, 4> a{
        {{"/", "text/html; charset=utf-8", view(kIndexHtml, sizeof kIndexHtml), {}},
         {"/ui/app.js", "text/javascript; charset=utf-8", view(kAppJs, sizeof kAppJs), {}},
         {"/ui/app.css", "text/css; charset=utf-8", view(kAppCss, sizeof kAppCss), {}},
         {"/favicon.svg", "image/svg+xml", view(kFavicon, sizeof kFavicon), {}}}};
    for (auto& x : a) x.etag = "\"" + sha256_hex(x.body).substr(0, 16) + "\"";
    return a;
  }();
  for (const auto& a : assets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace onemcp::server
