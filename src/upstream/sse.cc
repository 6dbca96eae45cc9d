#include "upstream/sse.h"

namespace onemcp::upstream {

bool SseParser::feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event) {
  if (broken_) return false;
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c != '\n' && c != '\r') continue;
    if (c == '\n' && after_cr_ && i == start && buf_.empty()) {
      // The LF of a CRLF whose CR ended the previous line.
      after_cr_ = false;
      start = i + 1;
      continue;
    }
    buf_.append(bytes.substr(start, i - start));
    after_cr_ = c == '\r';
    start = i + 1;
    line(buf_, on_event);
    buf_.clear();
    if (broken_) return false;
  }
  if (start < bytes.size()) after_cr_ = false;
  buf_.append(bytes.substr(start));
  if (buf_.size() > max_) broken_ = true;
  return !broken_;
}

void SseParser::line(std::string_view l, const std::function<void(const SseEvent&)>& on_event) {
  if (!started_) {
    // A UTF-8 BOM may open the stream, hence only its first line.
    started_ = true;
    if (l.starts_with("\xEF\xBB\xBF")) l.remove_prefix(3);
  }
  if (l.empty()) {
    // A blank line dispatches the event being built.
    if (has_data_) {
      SseEvent ev;
      if (!type_.empty()) ev.type = type_;
      ev.data = std::move(data_);
      ev.id = last_id_;
      on_event(ev);
    }
    data_.clear();
    type_.clear();
    has_data_ = false;
    return;
  }
  if (l.front() == ':') return;  // a comment (servers send them as keep-alives)
  std::string_view field = l, value;
  if (size_t colon = l.find(':'); colon != std::string_view::npos) {
    field = l.substr(0, colon);
    value = l.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
    if (data_.size() > max_) broken_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = std::string(value);
  } else if (field == "retry") {
    if (value.empty() || value.size() > 9) return;
    long ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return;
      ms = ms * 10 + (c - '0');
    }
    retry_ms_ = ms;
  }
  // Any other field is ignored.
}

}  // namespace onemcp::upstream
