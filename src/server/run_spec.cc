#include "server/run_spec.h"

#include "base/base64.h"

namespace onemcp::server {

bool RunSpec::network_relay() const {
  return language == Language::py && !policy.network.allowed_domains.empty();
}

ipc::RunRequest RunSpec::request() const {
  ipc::RunRequest r;
  r.code = code;
  r.args = args;
  r.env = env;
  r.cwd = cwd;
  r.files = files;
  r.timeout_ms = policy.limits.timeout_ms;
  r.mem_mb = policy.limits.mem_mb;
  r.stdout_bytes = policy.limits.stdout_bytes;
  r.readonly = policy.filesystem.readonly;
  r.writable = policy.filesystem.writable;
  r.network_relay = network_relay();
  r.mcp = mcp;
  r.live = r.workspace = session != nullptr;
  return r;
}

Result<std::vector<ipc::InputFile>> parse_input_files(const nlohmann::json& files) {
  std::vector<ipc::InputFile> out;
  if (!files.is_object()) return make_error("files: must be an object of path -> content");
  if (files.size() > ipc::kMaxInputFiles) {
    return make_error("files: " + std::to_string(files.size()) + " files, more than the " +
                      std::to_string(ipc::kMaxInputFiles) + " a call may give");
  }
  size_t total = 0;
  for (const auto& [path, content] : files.items()) {
    if (auto s = ipc::check_input_path(path); !s) {
      return make_error("files: path \"" + path + "\" " + s.error().message);
    }
    std::string data;
    if (content.is_string()) {
      data = content.get<std::string>();
    } else if (content.is_object() && content.contains("base64") && content["base64"].is_string()) {
      auto decoded = base64_decode(content["base64"].get<std::string>());
      if (!decoded) return make_error("files: " + path + ": base64 is not valid base64");
      data = std::move(*decoded);
    } else {
      return make_error("files: " + path + ": content must be text or {\"base64\": ...}");
    }
    total += data.size();
    if (total > ipc::kMaxInputBytes) {
      return make_error("files: more than " + std::to_string(ipc::kMaxInputBytes >> 20) +
                        " MiB of content in all");
    }
    out.push_back({path, std::move(data)});
  }
  return out;
}

}  // namespace onemcp::server
