// server/run_files.h — what a run leaves in /out, as MCP content: the media type of a file's
// bytes (images by their magic numbers, never by their names), the onemcp://runs/<run>/out/<path>
// URIs, and the store that keeps the files of recent runs for resources/read, each run readable
// only by the principal whose call made it.
// Thread-safety: the free functions are pure; RunFiles may be used from any thread.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sandbox/outdir.h"

namespace onemcp::server {

// How much of a run's /out goes into its result (raw bytes). /out itself reads back at most
// 1 MiB of a file (sandbox::OutLimits): a longer image is never whole, so never shown.
struct OutContentLimits {
  size_t image_bytes = 1u << 20;    // one image block
  size_t images_bytes = 4u << 20;   // all image blocks of one result
  size_t inline_bytes = 4u << 10;   // a UTF-8 file shown in the text content as well
  size_t inline_total = 16u << 10;  // all files shown in one result's text content
};

// How many runs' files the server keeps for resources/read; beyond either bound the least
// recently used runs are forgotten.
struct RunFilesLimits {
  size_t max_runs = 64;
  size_t max_bytes = 64u << 20;
};

// "image/png", "image/jpeg", "image/gif", "image/webp" or "image/svg+xml" when `bytes` start as
// one (an SVG: text whose first element, after an XML declaration, comments or a doctype,
// is <svg>); null otherwise.
const char* image_type(std::string_view bytes);

// Text: valid UTF-8 without a NUL byte (a NUL is what tells binary files, as for git and diff).
bool is_text(std::string_view bytes);

// image_type(), else for text a text type (text/csv, application/json, ... by the name's
// extension; text/plain otherwise), else application/octet-stream.
std::string media_type(std::string_view path, std::string_view bytes);

// onemcp://runs/<run_id>/out/<path>, the path percent-encoded (bytes other than A-Z a-z 0-9
// - . _ ~ and /).
std::string run_file_uri(std::string_view run_id, std::string_view path);

struct RunFileName {
  std::string run_id;
  std::string path;  // percent-decoded
};
// What a URI of run_file_uri()'s form names; nullopt for anything else, and for a path that is
// absolute, has an empty, "." or ".." component, holds a NUL or is badly percent-encoded.
std::optional<RunFileName> parse_run_file_uri(std::string_view uri);

class RunFiles {
 public:
  explicit RunFiles(RunFilesLimits limits = {}) : limits_(limits) {}

  // Keeps `files` under `run_id` (unguessable: random_hex(16)) for `principal`, forgetting the
  // least recently used runs beyond the limits. A run larger than max_bytes is not kept.
  void put(const std::string& run_id, const std::string& principal,
           std::vector<sandbox::OutFile> files);
  // The file, when `principal` made the run and it is still kept (the run becomes the most
  // recently used); null otherwise, whatever the reason, so nothing tells another principal
  // that the run exists.
  std::shared_ptr<const sandbox::OutFile> find(std::string_view principal, std::string_view run_id,
                                               std::string_view path);

  size_t runs() const;
  size_t bytes() const;

 private:
  struct Run {
    std::string principal;
    std::shared_ptr<const std::vector<sandbox::OutFile>> files;
    size_t bytes = 0;
    std::list<std::string>::iterator recent;  // in recent_
  };
  void forget(std::unordered_map<std::string, Run>::iterator it);

  const RunFilesLimits limits_;
  mutable std::mutex mu_;          // guards everything below
  std::list<std::string> recent_;  // run ids, the most recently used first
  std::unordered_map<std::string, Run> runs_;
  size_t bytes_ = 0;
};

}  // namespace onemcp::server
