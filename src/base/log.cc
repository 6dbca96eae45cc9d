#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "base/utf8.h"

namespace onemcp::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::atomic<Format> g_format{Format::text};

const char* name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
  }
  return "?";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no NaN or infinities
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "null";
}

void json_string(std::string& out, std::string_view raw) {
  const std::string s = is_valid_utf8(raw) ? std::string(raw) : sanitize_utf8(raw);
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

// A text field value: bare when unambiguous, else quoted with \ " and control characters escaped.
void text_value(std::string& out, std::string_view v) {
  bool plain = !v.empty();
  for (unsigned char c : v) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) plain = false;
  }
  if (plain) {
    out += v;
    return;
  }
  out += '"';
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  out += '"';
}

}  // namespace

std::string timestamp(std::chrono::system_clock::time_point when) {
  const auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
  std::time_t t = std::time_t(ms_total / 1000);
  int ms = int(ms_total % 1000);
  if (ms < 0) {  // before 1970: floor, not truncation
    ms += 1000;
    --t;
  }
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[96];  // room for any int the compiler cannot rule out
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return ts;
}

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }
void set_format(Format f) { g_format = f; }
Format format() { return g_format; }

std::string format_line(Format f, Level l, std::chrono::system_clock::time_point when,
                        std::string_view msg, const std::vector<Field>& fields) {
  std::string line;
  if (f == Format::json) {
    line = "{\"ts\":\"" + timestamp(when) + "\",\"level\":\"" + name(l) + "\",\"msg\":";
    json_string(line, msg);
    for (const Field& field : fields) {
      line += ',';
      json_string(line, field.key);
      line += ':';
      if (auto* s = std::get_if<std::string>(&field.value)) {
        json_string(line, *s);
      } else if (auto* i = std::get_if<int64_t>(&field.value)) {
        line += std::to_string(*i);
      } else {
        line += number(std::get<double>(field.value));
      }
    }
    line += '}';
    return line;
  }
  line = timestamp(when) + " [" + name(l) + "] ";
  line += msg;
  for (const Field& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    if (auto* s = std::get_if<std::string>(&field.value)) {
      text_value(line, *s);
    } else if (auto* i = std::get_if<int64_t>(&field.value)) {
      line += std::to_string(*i);
    } else {
      line += number(std::get<double>(field.value));
    }
  }
  return line;
}

void write(Level l, std::string_view msg, const std::vector<Field>& fields) {
  if (l < g_level.load()) return;
  std::string line = format_line(g_format.load(), l, std::chrono::system_clock::now(), msg, fields);
  line += '\n';
  ssize_t r = ::write(2, line.data(), line.size());
  (void)r;
}

}  // namespace onemcp::log
