// server/run_spec.h — one run as the server understands it. Built once from the validated call
// (tools.h prepare_run), it is what the backend runs: the capsule's manifest records its code,
// entry, runtime and effective policy, and the worker's request is derived from it
// (RunSpec::request), the only place where the policy's limits and filesystem paths become the
// request's. Thread-safety: a plain value.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deps/npm.h"
#include "deps/pip.h"
#include "ipc/wire.h"
#include "policy/config.h"
#include "server/sessions.h"

namespace onemcp::server {

enum class Language { js, py };

struct RunSpec {
  Language language = Language::js;
  std::string code;
  std::vector<std::string> args;           // the entry: argv after the program name,
  std::map<std::string, std::string> env;  // environment (Python with network access: the proxy)
  std::string cwd;                         // and working directory (empty: the runtime's)
  std::string stdin_data;
  std::vector<ipc::InputFile> files;  // run_py: the call's `files` (checked by parse_input_files)
  policy::Policy policy;   // the call's effective policy (the server's, tightened by the call)
  deps::Dependencies npm;  // run_js: the call's npm.dependencies (validated)
  deps::PipSet pip;        // run_py: the call's pip requirements and wheel URLs (validated)
  bool mcp = false;        // the run may call upstream tools (code mode)
  // The session the call names: it runs in the session's live interpreter of its language, with
  // the session's workspace at /work (see server/sessions.h).
  std::shared_ptr<Session> session;

  // Python with allowed domains reaches the network through its relay's proxy.
  bool network_relay() const;
  // The worker's request for this run.
  ipc::RunRequest request() const;
};

// The call's `files` argument (its shape already checked against the input schema): paths
// checked (ipc::check_input_path), base64 decoded, at most ipc::kMaxInputFiles files and
// ipc::kMaxInputBytes of content.
Result<std::vector<ipc::InputFile>> parse_input_files(const nlohmann::json& files);

}  // namespace onemcp::server
