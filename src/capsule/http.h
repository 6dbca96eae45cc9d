// capsule/http.h — the read-only HTTP view of the capsule store, for the server's routes:
//   GET /capsules/<hash>/manifest.json (or /capsules/<hash>)
//                                → the manifest (application/json), exactly as stored and verified
//   GET /capsules/<hash>/<file>  → the bytes of the layer whose "file" is <file>: code as
//                                  text/plain (never something a browser would run), other
//                                  layers as application/octet-stream
// Every answer comes from a fresh, fully verified open. No transport types: the caller maps
// the plain reply onto its HTTP response (and should add "X-Content-Type-Options: nosniff").
// Thread-safety: as CapsuleStore.
#pragma once

#include <string>
#include <string_view>

#include "capsule/store.h"

namespace onemcp::capsule {

struct HttpReply {
  int status = 200;  // 200; 400 malformed id or path; 404 no such capsule or layer; 500 tampered
  std::string content_type;
  std::string body;  // on errors: {"error": "..."}
};

// `path` is what follows "/capsules/" in the request target, without a query string:
// "<hash>", "<hash>/manifest.json" or "<hash>/<file>".
HttpReply capsule_http_get(CapsuleStore& store, std::string_view path);

}  // namespace onemcp::capsule
