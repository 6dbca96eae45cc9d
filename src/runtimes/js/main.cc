// 1mcp-js-worker: the JavaScript runtime worker. Pre-initialises QuickJS and the prelude once,
// then serves runs from the supervisor as forks of that state (see worker/zygote.h).
#include <cstdio>

#include "runtimes/js/js_runtime.h"
#include "worker/zygote.h"

int main(int argc, char** argv) {
  onemcp::js::JsRuntime runtime;
  if (auto s = runtime.init(); !s) {
    std::fprintf(stderr, "1mcp-js-worker: %s\n", s.error().message.c_str());
    return 1;
  }
  return onemcp::worker::zygote_main(runtime, argc, argv);
}
