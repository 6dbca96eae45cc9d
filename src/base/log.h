// base/log.h — leveled logging to stderr (stdout belongs to the stdio transport). A line is text
// ("2026-01-02T03:04:05.678Z [info] message key=value ...", UTC to the millisecond) or, with
// set_format(Format::json), one JSON object ({"ts", "level", "msg", and the fields}).
// Thread-safety: safe; each line is written with one write(2).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace onemcp::log {

enum class Level { debug = 0, info, warn, error };
enum class Format { text, json };

// A named value of a structured line. Keys are plain identifiers chosen by the caller.
struct Field {
  std::string key;
  std::variant<std::string, int64_t, double> value;
};

void set_level(Level l);
Level level();
void set_format(Format f);
Format format();
void write(Level l, std::string_view msg, const std::vector<Field>& fields = {});

// The line write() emits for this moment, without its newline. Any bytes in `msg` or a string
// field: JSON gets them as valid UTF-8 with escapes; text quotes a field value that holds a
// space, a quote, '=', a control character, or nothing, and escapes newlines.
std::string format_line(Format f, Level l, std::chrono::system_clock::time_point when,
                        std::string_view msg, const std::vector<Field>& fields);

// ISO 8601 in UTC with milliseconds, as lines carry it: 2026-01-02T03:04:05.678Z.
std::string timestamp(std::chrono::system_clock::time_point when);

inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace onemcp::log
