#include "deps/files.h"

#include <fstream>

namespace onemcp::deps {

std::optional<std::string> read_file(const std::filesystem::path& p, size_t max) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::string s;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    s.append(buf, size_t(in.gcount()));
    if (s.size() > max) return std::nullopt;
  }
  return s;
}

Status write_file(const std::filesystem::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), std::streamsize(data.size()));
  out.close();
  if (!out) return make_error("cannot write " + p.string());
  return {};
}

}  // namespace onemcp::deps
