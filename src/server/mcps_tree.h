// server/mcps_tree.h — the read-only /mcps/ tree a run that may call upstream tools sees: the
// tools its policy allows as files a model can read before calling them.
//
//   /mcps/README.md               servers, tool counts, how to call them from JS and Python
//   /mcps/types.d.ts              every allowed tool in one declaration of `mcp`
//   /mcps/<server>/index.d.ts     the server's tools with one-line descriptions, re-exported
//   /mcps/<server>/<tool>.d.ts    a tool's doc comment, Input and Output types, and signature
//   /mcps/<server>/<tool>.pyi     the same as a Python stub with a docstring
//
// <server> and <tool> are the code-mode identifiers (codemode.h: [A-Za-z0-9_], collision-free,
// deterministic), cut to a bounded length (mcps_file_name). Each distinct tree is written once
// into a directory named by the SHA-256 of its files (McpsTrees), which the worker binds
// read-only at /mcps in the run's mount namespace: a run costs one bind mount, no file writing.
// Thread-safety: mcps_tree_files and mcps_file_name are pure; McpsTrees is thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "server/codemode.h"

namespace onemcp::server {

struct TreeFile {
  std::string path;  // relative: "README.md", "<server>/<tool>.d.ts"
  std::string text;
};

// An identifier as a file name: itself when at most kMaxFileStem bytes, else its first bytes,
// "_" and 16 hex digits of its SHA-256 (so still unique and the same every time).
inline constexpr size_t kMaxFileStem = 100;
std::string mcps_file_name(std::string_view ident);

// The files of the tree for `allowed` (already filtered by the run's policy), in path order.
std::vector<TreeFile> mcps_tree_files(const std::vector<CodeModeServer>& allowed);

// The SHA-256 (hex) of `files`: their paths and contents, length-prefixed.
std::string mcps_tree_key(const std::vector<TreeFile>& files);

// The trees written under `root`, one directory per key. A tree stays on disk while a lease on it
// lives (a run or a session's interpreter that mounted it); the others are removed whenever a new
// tree is written, and all of them when McpsTrees is made (a previous server's).
class McpsTrees {
 public:
  struct Tree {
    std::string key;  // the directory's name under root
  };

  // Creates `root` (mode 0755) if needed and empties it.
  static Result<std::unique_ptr<McpsTrees>> open(const std::string& root);

  // The tree of `allowed`, written first if it is not on disk yet (into a temporary directory,
  // then renamed: a run never sees half of it).
  Result<std::shared_ptr<const Tree>> get(const std::vector<CodeModeServer>& allowed);

  const std::string& root() const { return root_; }
  // How many trees were written since open (for tests).
  size_t writes() const;

 private:
  explicit McpsTrees(std::string root) : root_(std::move(root)) {}
  void remove_unused();  // mu_ held

  const std::string root_;
  mutable std::mutex mu_;
  std::map<std::string, std::weak_ptr<const Tree>> trees_;  // key -> lease
  size_t writes_ = 0;
};

}  // namespace onemcp::server
