// 1mcp-py-worker: the Python runtime zygote (see worker/zygote.h for the protocol).
#include <cstdio>

#include "runtimes/python/py_runtime.h"

int main(int argc, char** argv) {
  auto runtime = onemcp::python::make_runtime();
  if (!runtime) {
    std::fprintf(stderr, "1mcp-py-worker: %s\n", runtime.error().message.c_str());
    return 2;
  }
  return onemcp::worker::zygote_main(**runtime, argc, argv);
}
