// runtimes/python/py_runtime.h — the CPython runtime of 1mcp-py-worker: initialises an isolated
// interpreter once in the zygote and runs one request in each forked child.
// Thread-safety: single-threaded; lives in the zygote process and its forked children only.
#pragma once

#include <memory>

#include "base/result.h"
#include "worker/zygote.h"

namespace onemcp::python {

// Initialises CPython (isolated config, common stdlib and numpy preloaded, heap frozen).
// Call once per process, before any thread exists.
Result<std::unique_ptr<worker::Runtime>> make_runtime();

}  // namespace onemcp::python
