// 1mcp-py-worker: the Python runtime zygote (see worker/zygote.h for the protocol).
#include "runtimes/python/py_runtime.h"

int main() {
  auto runtime = onemcp::python::make_runtime();
  return onemcp::worker::zygote_main(*runtime);
}
