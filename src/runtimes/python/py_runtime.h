// runtimes/python/py_runtime.h — the CPython runtime of 1mcp-py-worker: initialises an isolated
// interpreter once in the zygote and runs one request in each forked child.
// Thread-safety: single-threaded; lives in the zygote process and its forked children only.
#pragma once

#include <memory>

#include "base/result.h"
#include "worker/zygote.h"

namespace onemcp::python {

// The runtime; its init() initialises CPython (isolated config, common stdlib and numpy
// preloaded, heap frozen). One per process, initialised before any thread exists.
std::unique_ptr<worker::Runtime> make_runtime();

}  // namespace onemcp::python
