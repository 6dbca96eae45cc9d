// server/ui.h — the single-page web UI served at GET / (runs code through POST /mcp).
// Thread-safety: returns a static string.
#pragma once

#include <string_view>

namespace onemcp::server {
std::string_view ui_page();
}
