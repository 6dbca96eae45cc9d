#include "server/run_files.h"

#include <array>

#include "base/utf8.h"

namespace onemcp::server {

namespace {

constexpr std::string_view kRunsPrefix = "onemcp://runs/";
constexpr std::string_view kOut = "/out/";
constexpr size_t kRunIdDigits = 32;  // random_hex(16)

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// The end of a doctype that starts at s[0] ("<!DOCTYPE ..."): its '>' outside quotes and the
// internal subset ([...]); npos when it does not end.
size_t doctype_end(std::string_view s) {
  char quote = 0;
  int depth = 0;
  for (size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    } else if (c == '>' && depth <= 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Whether the first element of this XML text is <svg>: what may precede it is skipped (a byte
// order mark, white space, the XML declaration and processing instructions, comments, a doctype).
bool starts_as_svg(std::string_view s) {
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  for (;;) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    size_t end = std::string_view::npos;
    if (s.starts_with("<?")) {
      end = s.find("?>");
      if (end != std::string_view::npos) end += 2;
    } else if (s.starts_with("<!--")) {
      end = s.find("-->", 4);
      if (end != std::string_view::npos) end += 3;
    } else if (s.starts_with("<!DOCTYPE")) {
      end = doctype_end(s);
    } else {
      break;
    }
    if (end == std::string_view::npos) return false;
    s.remove_prefix(end);
  }
  if (!s.starts_with("<svg") || s.size() < 5) return false;
  const char next = s[4];
  return is_space(next) || next == '>' || next == '/';
}

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += char(hi << 4 | lo);
    i += 2;
  }
  return out;
}

// A relative path of plain names: nothing a lookup could be steered with.
bool is_plain_path(std::string_view path) {
  if (path.empty() || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string_view name = path.substr(start, slash - start);
    if (name.empty() || name == "." || name == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

bool is_text(std::string_view bytes) {
  return bytes.find('\0') == std::string_view::npos && is_valid_utf8(bytes);
}

const char* image_type(std::string_view b) {
  if (b.starts_with("\x89PNG\r\n\x1a\n")) return "image/png";
  if (b.starts_with("\xFF\xD8\xFF")) return "image/jpeg";
  if (b.starts_with("GIF87a") || b.starts_with("GIF89a")) return "image/gif";
  if (b.size() >= 12 && b.starts_with("RIFF") && b.substr(8, 4) == "WEBP") return "image/webp";
  if (starts_as_svg(b) && is_text(b)) return "image/svg+xml";
  return nullptr;
}

std::string media_type(std::string_view path, std::string_view bytes) {
  if (const char* image = image_type(bytes)) return image;
  if (!is_text(bytes)) return "application/octet-stream";
  // Text: its name says what kind (the bytes are text whatever it says).
  static constexpr std::array<std::pair<std::string_view, const char*>, 7> kText{{
      {".csv", "text/csv"},
      {".tsv", "text/tab-separated-values"},
      {".json", "application/json"},
      {".md", "text/markdown"},
      {".xml", "application/xml"},
      {".yaml", "application/yaml"},
      {".yml", "application/yaml"},
  }};
  for (const auto& [ext, type] : kText)
    if (path.ends_with(ext)) return type;
  return "text/plain";
}

std::string run_file_uri(std::string_view run_id, std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string uri(kRunsPrefix);
  uri += run_id;
  uri += kOut;
  for (unsigned char c : path) {
    if (is_unreserved(c) || c == '/') {
      uri += char(c);
    } else {
      uri += '%';
      uri += kHex[c >> 4];
      uri += kHex[c & 15];
    }
  }
  return uri;
}

std::optional<RunFileName> parse_run_file_uri(std::string_view uri) {
  if (!uri.starts_with(kRunsPrefix)) return std::nullopt;
  uri.remove_prefix(kRunsPrefix.size());
  if (uri.size() < kRunIdDigits || uri.substr(kRunIdDigits, kOut.size()) != kOut) {
    return std::nullopt;
  }
  RunFileName name{std::string(uri.substr(0, kRunIdDigits)), {}};
  for (char c : name.run_id)
    if (hex_value(c) < 0 || (c >= 'A' && c <= 'F')) return std::nullopt;
  auto path = percent_decode(uri.substr(kRunIdDigits + kOut.size()));
  if (!path || !is_plain_path(*path)) return std::nullopt;
  name.path = std::move(*path);
  return name;
}

void RunFiles::put(const std::string& run_id, const std::string& principal,
                   std::vector<sandbox::OutFile> files) {
  size_t bytes = 0;
  for (const auto& f : files) bytes += f.path.size() + f.data.size();
  std::lock_guard lk(mu_);
  if (auto it = runs_.find(run_id); it != runs_.end()) forget(it);
  if (bytes > limits_.max_bytes || limits_.max_runs == 0) return;
  while (!recent_.empty() &&
         (runs_.size() >= limits_.max_runs || bytes_ + bytes > limits_.max_bytes)) {
    forget(runs_.find(recent_.back()));
  }
  recent_.push_front(run_id);
  runs_[run_id] =
      Run{principal, std::make_shared<const std::vector<sandbox::OutFile>>(std::move(files)), bytes,
          recent_.begin()};
  bytes_ += bytes;
}

std::shared_ptr<const sandbox::OutFile> RunFiles::find(std::string_view principal,
                                                       std::string_view run_id,
                                                       std::string_view path) {
  std::lock_guard lk(mu_);
  auto it = runs_.find(std::string(run_id));
  if (it == runs_.end() || it->second.principal != principal) return nullptr;
  recent_.splice(recent_.begin(), recent_, it->second.recent);
  const auto& files = it->second.files;
  for (const auto& f : *files) {
    // An alias of the run's files: it stays valid after the run is forgotten.
    if (f.path == path) return std::shared_ptr<const sandbox::OutFile>(files, &f);
  }
  return nullptr;
}

size_t RunFiles::runs() const {
  std::lock_guard lk(mu_);
  return runs_.size();
}

size_t RunFiles::bytes() const {
  std::lock_guard lk(mu_);
  return bytes_;
}

void RunFiles::forget(std::unordered_map<std::string, Run>::iterator it) {
  bytes_ -= it->second.bytes;
  recent_.erase(it->second.recent);
  runs_.erase(it);
}

}  // namespace onemcp::server
