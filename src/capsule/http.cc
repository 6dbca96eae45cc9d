#include "capsule/http.h"

#include <nlohmann/json.hpp>

#include "base/log.h"

namespace onemcp::capsule {
namespace {

HttpReply error_reply(int status, const std::string& message) {
  return {status, "application/json", nlohmann::json{{"error", message}}.dump()};
}

}  // namespace

HttpReply capsule_http_get(CapsuleStore& store, std::string_view path) {
  size_t slash = path.find('/');
  std::string_view hash = path.substr(0, slash);
  std::string_view file =
      slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
  if (!is_capsule_hash(hash))
    return error_reply(400, "not a capsule id (expected 64 lowercase hex digits)");
  const bool manifest = slash == std::string_view::npos || file == kManifestFile;
  if (!manifest && !is_layer_file_name(file)) {
    return error_reply(400, "not a layer file name");
  }

  auto c = store.open(hash);
  if (!c) {
    if (!store.contains(hash)) return error_reply(404, "no such capsule");
    log::warn(c.error().message);
    return error_reply(500, "capsule failed verification: " + c.error().message);
  }
  if (manifest) return {200, "application/json", std::move(c->manifest_json)};
  for (size_t i = 0; i < c->manifest.layers.size(); ++i) {
    const Layer& l = c->manifest.layers[i];
    if (l.file != file) continue;
    // Code is shown as text, never as something a browser would run; dependencies are opaque.
    std::string type = l.kind == "code" ? "text/plain; charset=utf-8" : "application/octet-stream";
    return {200, std::move(type), *c->layers[i]};
  }
  return error_reply(404, "no such layer in this capsule");
}

}  // namespace onemcp::capsule
