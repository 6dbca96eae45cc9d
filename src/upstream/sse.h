// upstream/sse.h — an incremental parser of text/event-stream (the WHATWG "server-sent events"
// interpretation rules): bytes in any chunking, lines ended by CRLF, LF or CR, `data:` lines
// joined with "\n", `event:`, `id:`, `retry:`, comments, and a leading BOM.
// Thread-safety: a value type; one stream per parser.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace onemcp::upstream {

struct SseEvent {
  std::string type = "message";  // the `event:` field, "message" when absent
  std::string data;              // the `data:` lines joined with "\n"
  std::string id;                // the stream's last event id at dispatch time
};

class SseParser {
 public:
  // `max_event_bytes` bounds one line and one event's data: a stream that exceeds it is broken.
  explicit SseParser(size_t max_event_bytes) : max_(max_event_bytes) {}

  // Parses `bytes`, calling `on_event` for each complete event (events with no data are not
  // dispatched, as the standard says). False once the stream broke the size bound; every later
  // call is refused too.
  bool feed(std::string_view bytes, const std::function<void(const SseEvent&)>& on_event);

  const std::string& last_event_id() const { return last_id_; }
  long retry_ms() const { return retry_ms_; }  // -1 until the stream sets it

 private:
  void line(std::string_view l, const std::function<void(const SseEvent&)>& on_event);

  size_t max_;
  bool broken_ = false;
  bool started_ = false;   // the first line (which may start with a BOM) was seen
  bool after_cr_ = false;  // the last byte was a CR: a following LF ends nothing
  std::string buf_;        // the current, unfinished line
  std::string data_, type_, last_id_;
  bool has_data_ = false;
  long retry_ms_ = -1;
};

}  // namespace onemcp::upstream
