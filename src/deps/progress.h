// deps/progress.h — progress of preparing a dependency set (npm's or pip's).
// Thread-safety: a callback is called on the preparing thread.
#pragma once

#include <functional>
#include <string>

namespace onemcp::deps {

// Reports the steps of building a set: `fraction` in [0, 1] (increasing) and what is happening
// ("resolving", "installing 3 packages", "bundling", "ready"). Called on the building thread.
using BuildProgress = std::function<void(double fraction, const std::string& message)>;

}  // namespace onemcp::deps
