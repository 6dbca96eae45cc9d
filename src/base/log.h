// base/log.h — leveled logging to stderr (stdout belongs to the stdio transport).
// Thread-safety: safe; each line is written with one write(2).
#pragma once

#include <string_view>

namespace onemcp::log {

enum class Level { debug = 0, info, warn, error };

void set_level(Level l);
Level level();
void write(Level l, std::string_view msg);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace onemcp::log
