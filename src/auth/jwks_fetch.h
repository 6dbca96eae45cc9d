// auth/jwks_fetch.h — the real sources of the issuer's JWK Set for JwksCache: a local file, or an
// http(s) URL fetched with libcurl (no proxy, no redirects, bounded time and size). Only main()
// builds these; everything else gets a JwksCache::Fetch.
// Thread-safety: the returned functions may be called from any thread, one call at a time or
// concurrently.
#pragma once

#include <string>

#include "auth/jwks_cache.h"

namespace onemcp::auth {

// Reads `path` (a regular file of at most 1 MiB) at every call.
JwksCache::Fetch jwks_file_source(std::string path);

// GETs `url` at every call; a 200 answer's body is the set. The URL's scheme must be http or
// https (the config allows http only to loopback hosts).
JwksCache::Fetch jwks_url_source(std::string url);

}  // namespace onemcp::auth
