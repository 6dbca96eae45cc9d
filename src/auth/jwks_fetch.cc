// Curl callbacks are noexcept and only append to a string with a size check; nothing unwinds
// through libcurl.
#include "auth/jwks_fetch.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "base/c_ptr.h"
#include "base/unique_fd.h"

namespace onemcp::auth {
namespace {

constexpr size_t kMaxBytes = 1u << 20;


// curl_global_init is not thread-safe on every curl build: once, before the first handle.
bool curl_ready() {
  static const bool ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  return ok;
}

struct Body {
  std::string data;
  bool too_big = false;
};

size_t on_body(char* ptr, size_t size, size_t n, void* user) noexcept {
  auto* body = static_cast<Body*>(user);
  const size_t len = size * n;
  if (body->data.size() + len > kMaxBytes) {
    body->too_big = true;
    return 0;  // aborts the transfer
  }
  try {
    body->data.append(ptr, len);
  } catch (...) {
    return 0;
  }
  return len;
}

Result<std::string> read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return make_error(path + ": cannot read: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(path + ": not a regular file");
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, size_t(n));
    if (text.size() > kMaxBytes) return make_error(path + ": larger than 1 MiB");
  }
  return text;
}

Result<std::string> get_url(const std::string& url) {
  if (!url.starts_with("https://") && !url.starts_with("http://")) {
    return make_error(url + ": only http and https URLs are fetched");
  }
  if (!curl_ready()) return make_error("libcurl could not be initialised");
  CPtr<CURL, curl_easy_cleanup> easy(curl_easy_init());
  if (!easy) return make_error("libcurl could not be initialised");
  CPtr<curl_slist, curl_slist_free_all> headers(
      curl_slist_append(nullptr, "Accept: application/jwk-set+json, application/json"));
  Body body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = easy.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxBytes));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  if (body.too_big) return make_error(url + ": larger than 1 MiB");
  if (rc != CURLE_OK) {
    return make_error(url + ": " + curl_easy_strerror(rc) +
                      (errbuf[0] ? std::string(": ") + errbuf : ""));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) return make_error(url + ": HTTP " + std::to_string(status));
  return std::move(body.data);
}

}  // namespace

JwksCache::Fetch jwks_file_source(std::string path) {
  return [path = std::move(path)] { return read_file(path); };
}

JwksCache::Fetch jwks_url_source(std::string url) {
  return [url = std::move(url)] { return get_url(url); };
}

}  // namespace onemcp::auth
