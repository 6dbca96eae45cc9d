#include "server/run_spec.h"

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
  r.timeout_ms = policy.limits.timeout_ms;
  r.mem_mb = policy.limits.mem_mb;
  r.stdout_bytes = policy.limits.stdout_bytes;
  r.readonly = policy.filesystem.readonly;
  r.writable = policy.filesystem.writable;
  r.network_relay = network_relay();
  r.mcp = mcp;
  return r;
}

}  // namespace onemcp::server
