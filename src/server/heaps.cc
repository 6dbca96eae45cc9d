#include "server/heaps.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/sha256.h"

namespace onemcp::server {

std::string JsHeaps::key(uint64_t worker, const std::string& layer_sha256,
                         const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env, const std::string& cwd) {
  nlohmann::json j = {
      {"worker", worker}, {"layer", layer_sha256}, {"argv", argv}, {"env", env}, {"cwd", cwd}};
  return sha256_hex(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

uint64_t JsHeaps::bytes() const {
  std::lock_guard lk(mu_);
  return bytes_;
}

std::shared_ptr<const UniqueFd> JsHeaps::get(const std::string& key, uint64_t capacity,
                                             const Make& make) {
  std::unique_lock lk(mu_);
  Entry& e = entries_[key];
  e.last_use = ++clock_;
  if (e.fd || e.refused) return e.fd;
  if (e.making) {
    made_.wait(lk, [&] { return !entries_.count(key) || !entries_[key].making; });
    auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.fd;
  }
  e.making = true;
  lk.unlock();

  std::shared_ptr<const UniqueFd> heap;
  bool refused = false;
  uint64_t size = 0;
  UniqueFd fd(::memfd_create("1mcp-js-heap", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid() || ::ftruncate(fd.get(), off_t(capacity)) != 0) {
    log::error(std::string("js heap: no memfd: ") + std::strerror(errno));
  } else if (auto out = make(fd.get()); !out) {
    log::error("js heap: " + out.error().message);
  } else if (out->outcome == sandbox::Outcome::ok && out->out.empty() && out->err.empty() &&
             out->report.heap_bytes && *out->report.heap_bytes <= capacity) {
    size = *out->report.heap_bytes;
    // The run is gone: nothing maps the memfd shared any more, so it can be sealed for good.
    constexpr int kSeals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
    if (::ftruncate(fd.get(), off_t(size)) == 0 && ::fcntl(fd.get(), F_ADD_SEALS, kSeals) == 0) {
      heap = std::make_shared<const UniqueFd>(std::move(fd));
      log::info("npm dependency set loaded into a heap of " + std::to_string(size >> 10) +
                " KiB, which later runs continue from");
    } else {
      log::error(std::string("js heap: cannot seal: ") + std::strerror(errno));
    }
  } else {
    // Ran to its end without a heap: the layer prints, leaves work scheduled or throws while it
    // loads. Stopped from outside (time, memory, cancel): perhaps not next time.
    refused = out->outcome == sandbox::Outcome::ok || out->outcome == sandbox::Outcome::error;
    if (refused) {
      log::info(std::string("npm dependency set loaded by each run: ") +
                (out->outcome == sandbox::Outcome::error ? "it fails while loading"
                 : out->out.empty() && out->err.empty()  ? "it leaves work scheduled when loaded"
                                                         : "it prints while loading"));
    }
  }

  lk.lock();
  Entry& done = entries_[key];
  done.making = false;
  done.refused = refused;
  done.fd = heap;
  done.bytes = heap ? size : 0;
  bytes_ += done.bytes;
  if (!heap && !refused) entries_.erase(key);
  evict_locked();
  made_.notify_all();
  return heap;
}

void JsHeaps::evict_locked() {
  // Entries without a heap (refused layers) cost no memory to speak of, but calls may vary
  // argv, env and cwd at will: they are capped in number.
  while (entries_.size() > kMaxEntries) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.making) continue;
      if (oldest == entries_.end() || it->second.last_use < oldest->second.last_use) oldest = it;
    }
    if (oldest == entries_.end()) break;
    bytes_ -= oldest->second.bytes;
    entries_.erase(oldest);
  }
  while (bytes_ > max_bytes_) {
    auto oldest = entries_.end();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!it->second.fd) continue;
      if (oldest == entries_.end() || it->second.last_use < oldest->second.last_use) oldest = it;
    }
    if (oldest == entries_.end()) return;
    bytes_ -= oldest->second.bytes;  // runs still holding it keep their mapping
    entries_.erase(oldest);
  }
}

}  // namespace onemcp::server
