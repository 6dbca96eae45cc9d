// tests/conformance/fixtures.h — the official MCP conformance suite's fixtures as an extension of
// the server (see fixtures.cc). Test builds only (CMake option ONEMCP_CONFORMANCE_FIXTURES).
#pragma once

#include <memory>

#include "server/extension.h"

namespace onemcp::conformance {

std::unique_ptr<server::McpExtension> make_fixtures();

}  // namespace onemcp::conformance
