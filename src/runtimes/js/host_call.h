// runtimes/js/host_call.h — how a C++ function becomes a host function of the prelude's `host`
// object: guarded<F> catches every C++ exception at the boundary, since none may unwind into
// QuickJS (a C library); running out of memory becomes the script's "out of memory" error.
// Thread-safety: stateless.
#pragma once

#include <quickjs.h>

#include <new>

namespace onemcp::js {

using HostFn = JSValue (*)(JSContext*, JSValueConst, int, JSValueConst*);

template <HostFn F>
JSValue guarded(JSContext* ctx, JSValueConst this_val, int argc, JSValueConst* argv) {
  try {
    return F(ctx, this_val, argc, argv);
  } catch (const std::bad_alloc&) {
    return JS_ThrowOutOfMemory(ctx);
  } catch (...) {
    return JS_ThrowInternalError(ctx, "internal error in a host function");
  }
}

// One entry of the `host` object: its name, its declared argument count and the function.
struct HostFunction {
  const char* name;
  int length;
  JSCFunction* fn;
};

}  // namespace onemcp::js
