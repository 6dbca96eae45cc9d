#include "ipc/wire.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/base64.h"
#include "base/json_depth.h"

namespace onemcp::ipc {

using nlohmann::json;

Status check_input_path(std::string_view path) {
  if (path.empty() || path.size() > 1024) return make_error("must have 1 to 1024 bytes");
  if (path.find('\0') != std::string_view::npos) return make_error("must not contain NUL");
  if (path.front() == '/') return make_error("must be relative (it is written below cwd)");
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    if (part.empty())
      return make_error("must not have empty components (\"//\" or a trailing \"/\")");
    if (part == "." || part == "..") return make_error("must not have \".\" or \"..\" components");
    if (part.size() > 255) return make_error("has a component longer than 255 bytes");
    start = end + 1;
  }
  return {};
}

std::string encode(const RunRequest& r) {
  json j = {{"code", r.code},         {"args", r.args},
            {"env", r.env},           {"cwd", r.cwd},
            {"timeoutMs", r.timeout_ms}, {"memMb", r.mem_mb},
            {"stdoutBytes", r.stdout_bytes}, {"transpiled", r.transpiled},
            {"readonly", r.readonly},         {"writable", r.writable}};
  if (!r.files.empty()) {
    json files = json::array();
    for (const auto& f : r.files)
      files.push_back({{"path", f.path}, {"base64", base64_encode(f.data)}});
    j["files"] = std::move(files);
  }
  if (r.network_relay) j["networkRelay"] = true;
  if (r.mcp) j["mcp"] = true;
  if (!r.pip_key.empty()) j["pipKey"] = r.pip_key;
  if (!r.mcps_key.empty()) j["mcpsKey"] = r.mcps_key;
  if (r.profile) j["profile"] = true;
  if (r.live) j["live"] = true;
  if (r.workspace) j["workspace"] = true;
  if (r.heap != HeapMode::none) j["heap"] = r.heap == HeapMode::make ? "make" : "use";
  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (!r.deps_code.empty()) {
    // Raw, after a NUL (which JSON text never contains): escaping megabytes into JSON and
    // parsing them back cost tens of milliseconds per run.
    out.reserve(out.size() + 1 + r.deps_code.size());
    out += '\0';
    out += r.deps_code;
  }
  return out;
}

Result<RunRequest> decode_request(const std::string& s) {
  const size_t nul = s.find('\0');
  const auto text_end = nul == std::string::npos ? s.end() : s.begin() + std::ptrdiff_t(nul);
  json j = json::parse(s.begin(), text_end, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error("run request is not a JSON object");
  try {
    RunRequest r;
    r.code = j.at("code").get<std::string>();
    r.args = j.value("args", std::vector<std::string>{});
    r.env = j.value("env", std::map<std::string, std::string>{});
    r.cwd = j.value("cwd", std::string{});
    r.timeout_ms = j.value("timeoutMs", uint64_t{0});
    r.mem_mb = j.value("memMb", uint64_t{0});
    r.stdout_bytes = j.value("stdoutBytes", uint64_t{0});
    r.transpiled = j.value("transpiled", false);
    r.network_relay = j.value("networkRelay", false);
    r.mcp = j.value("mcp", false);
    r.deps_code = nul == std::string::npos ? j.value("depsCode", std::string{}) : s.substr(nul + 1);
    r.pip_key = j.value("pipKey", std::string{});
    r.mcps_key = j.value("mcpsKey", std::string{});
    r.profile = j.value("profile", false);
    r.live = j.value("live", false);
    r.workspace = j.value("workspace", false);
    const std::string heap = j.value("heap", std::string{});
    if (heap == "make") {
      r.heap = HeapMode::make;
    } else if (heap == "use") {
      r.heap = HeapMode::use;
    } else if (!heap.empty()) {
      return make_error("bad run request: unknown heap mode");
    }
    r.readonly = j.value("readonly", std::vector<std::string>{"/"});
    r.writable = j.value("writable", default_writable());
    if (auto files = j.find("files"); files != j.end()) {
      for (const auto& f : files->get_ref<const json::array_t&>()) {
        auto data = base64_decode(f.at("base64").get_ref<const std::string&>());
        if (!data) return make_error("bad run request: a file's content is not base64");
        r.files.push_back({f.at("path").get<std::string>(), std::move(*data)});
      }
    }
    return r;
  } catch (const std::exception& e) {
    return make_error(std::string("bad run request: ") + e.what());
  }
}

std::string encode(const ChildReport& r) {
  json j = json::object();
  if (r.value) j["value"] = *r.value;
  if (r.error_kind) j["errorKind"] = *r.error_kind;
  if (r.error_message) j["errorMessage"] = *r.error_message;
  if (r.needs_transpile) j["needsTranspile"] = true;
  if (r.exit_code) j["exitCode"] = *r.exit_code;
  if (r.heap_bytes) j["heapBytes"] = *r.heap_bytes;
  if (r.kept) j["kept"] = true;
  if (!r.steps.empty()) {
    json steps = json::array();
    for (const RunStep& s : r.steps) steps.push_back(json::array({s.name, s.ns, s.minflt}));
    j["steps"] = std::move(steps);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

ChildReport decode_report(const std::string& s) {
  ChildReport r;
  if (!json_depth_within(s)) return r;  // written by untrusted code: no deep recursion later
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return r;
  auto str = [&](const char* k) -> std::optional<std::string> {
    auto it = j.find(k);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  r.value = str("value");
  r.error_kind = str("errorKind");
  r.error_message = str("errorMessage");
  auto it = j.find("needsTranspile");
  r.needs_transpile = it != j.end() && it->is_boolean() && it->get<bool>();
  it = j.find("exitCode");
  if (it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 0 &&
      it->get<int64_t>() <= 255)
    r.exit_code = int(it->get<int64_t>());
  it = j.find("heapBytes");
  if (it != j.end() && it->is_number_unsigned()) r.heap_bytes = it->get<uint64_t>();
  it = j.find("kept");
  r.kept = it != j.end() && it->is_boolean() && it->get<bool>();
  // Written by the run's process: whatever does not have the expected shape is left out.
  it = j.find("steps");
  if (it != j.end() && it->is_array()) {
    for (const json& s : *it) {
      if (r.steps.size() >= kMaxRunSteps) break;
      if (!s.is_array() || s.size() != 3 || !s[0].is_string() || !s[1].is_number_integer() ||
          !s[2].is_number_integer())
        continue;
      r.steps.push_back(
          {s[0].get<std::string>().substr(0, 64), s[1].get<int64_t>(), s[2].get<int64_t>()});
    }
  }
  return r;
}

Status send_with_fds(int sock, const void* data, size_t len, const int* fds, size_t nfds) {
  iovec iov{const_cast<void*>(data), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int) * 16)];
  if (nfds > 16) return make_error("too many fds");
  if (nfds > 0) {
    msg.msg_control = buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  for (;;) {
    ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n >= 0) return {};
    if (errno != EINTR) return make_error(std::string("sendmsg: ") + std::strerror(errno));
  }
}

Result<size_t> recv_with_fds(int sock, void* data, size_t len, std::vector<UniqueFd>* fds,
                             size_t max_fds) {
  iovec iov{data, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int) * 16)];
  msg.msg_control = buf;
  msg.msg_controllen = sizeof buf;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return make_error(std::string("recvmsg: ") + std::strerror(errno));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      fds->emplace_back(fd);  // owned even when beyond max_fds, so it gets closed
    }
  }
  if (fds->size() > max_fds) return make_error("too many fds received");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return make_error("truncated message");
  return static_cast<size_t>(n);
}

void FrameHeader::write(char* out) const {
  for (size_t i = 0; i < kBytes; ++i) out[i] = char((length >> (8 * i)) & 0xff);
}

FrameHeader FrameHeader::read(const char* in) {
  FrameHeader h;
  for (size_t i = 0; i < kBytes; ++i) h.length |= uint32_t(uint8_t(in[i])) << (8 * i);
  return h;
}

std::string frame(std::string_view payload) {
  std::string out(FrameHeader::kBytes, '\0');
  FrameHeader{uint32_t(payload.size())}.write(out.data());
  out.append(payload);
  return out;
}

bool FrameReader::feed(const char* data, size_t len) {
  // A long stream seldom ends a read on a frame boundary: drop what was read once it is at least
  // half of what is held, so only the unread part stays (amortised linear copying).
  if (off_ > 0 && off_ >= buf_.size() - off_) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data, len);
  if (buf_.size() - off_ < FrameHeader::kBytes) return true;
  return FrameHeader::read(buf_.data() + off_).acceptable();
}

bool FrameReader::garbled() const {
  return buf_.size() - off_ >= FrameHeader::kBytes &&
         !FrameHeader::read(buf_.data() + off_).acceptable();
}

std::optional<std::string> FrameReader::next() {
  constexpr size_t kHead = FrameHeader::kBytes;
  if (buf_.size() - off_ < kHead) return std::nullopt;
  const uint32_t n = FrameHeader::read(buf_.data() + off_).length;
  if (buf_.size() - off_ - kHead < n) return std::nullopt;
  std::string out = buf_.substr(off_ + kHead, n);
  off_ += kHead + n;
  if (off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  }
  return out;
}

Result<UniqueFd> memfd_with(const char* name, const std::string& bytes) {
  UniqueFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return make_error(std::string("memfd_create: ") + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("memfd write: ") + std::strerror(errno));
    }
    off += size_t(n);
  }
  ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  if (::lseek(fd.get(), 0, SEEK_SET) < 0) return make_error("memfd lseek failed");
  return fd;
}

Result<std::string> read_all(int fd, size_t max) {
  std::string out;
  char buf[65536];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("read: ") + std::strerror(errno));
    }
    if (n == 0) break;
    off += n;
    out.append(buf, size_t(n));
    if (out.size() > max) return make_error("input too large");
  }
  return out;
}

}  // namespace onemcp::ipc
