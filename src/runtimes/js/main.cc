// 1mcp-js-worker: the JavaScript runtime worker. Pre-initialises QuickJS and the prelude once,
// then serves runs from the supervisor as forks of that state (see worker/zygote.h).
//
// `1mcp-js-worker --run-once REQUEST_JSON` runs one request directly on the inherited fds 0-4
// (stdin, stdout, stderr, result, broker channel), without zygote or sandbox: for testing the
// runtime against a scripted broker peer, and for debugging.
#include <cstdio>
#include <cstring>

#include "ipc/wire.h"
#include "runtimes/js/js_runtime.h"
#include "worker/zygote.h"

int main(int argc, char** argv) {
  onemcp::js::JsRuntime runtime;
  if (argc == 3 && std::strcmp(argv[1], "--run-once") == 0) {
    if (auto s = runtime.init(); !s) {
      std::fprintf(stderr, "1mcp-js-worker: %s\n", s.error().message.c_str());
      return 1;
    }
    auto req = onemcp::ipc::decode_request(argv[2]);
    if (!req) {
      std::fprintf(stderr, "1mcp-js-worker: %s\n", req.error().message.c_str());
      return 125;
    }
    return runtime.run(*req);
  }
  return onemcp::worker::zygote_main(runtime);
}
