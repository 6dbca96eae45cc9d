// cli/config_file.h — the config file of the `1mcp` commands: where it is (relative to the
// project directory), how to read it so that a missing file says how to make one, and where
// `serve --stdio` keeps its state when it runs without one.
// Thread-safety: stateless functions; call from main's thread (they read the environment).
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/result.h"
#include "policy/config.h"

namespace onemcp::cli {

inline constexpr const char* kDefaultConfigName = "1mcp.config.json";

// `path` relative to the project directory `dir`; an absolute path or an empty `dir` leaves it
// as given.
std::string resolve(const std::string& dir, const std::string& path);

// The project directory: `dir` when given; else the directory of a config named with a path
// ("/abs/path/1mcp.config.json" -> "/abs/path"), so that the config's relative paths (signing key,
// caches) do not depend on where a client started the server; else "" (the working directory).
std::string project_dir(const std::string& dir, const std::string& config);

// The `1mcp init` command line that writes the config `config` of project `dir`, as the user
// would type it ("1mcp init", "1mcp init --dir proj -c my.json").
std::string init_command(const std::string& dir, const std::string& config);

// Whether nothing exists at `path` (so `1mcp init` would create it there).
bool config_missing(const std::string& path);

// The config `config` of project `dir`. When the file cannot be read (missing, unreadable, not
// a file) the error also gives the `1mcp init` command that makes one; an invalid file's error
// names the field and the problem, as policy::load_config says it.
Result<policy::Config> load_project_config(const std::string& dir, const std::string& config);

// The config file as an ordered document (so a rewrite keeps the user's key order), after
// checking that it is a valid config today: the commands never edit a file they do not
// understand.
Result<nlohmann::ordered_json> read_config_document(const std::string& dir,
                                                    const std::string& config);

// Checks `doc` as a config, then replaces the file at `path` with it at once (a temporary file
// in the same directory, renamed over it), with the file's permissions, or `mode` when given
// (set before the new content is written).
Status write_config_document(const std::string& path, const nlohmann::ordered_json& doc,
                             std::optional<mode_t> mode = std::nullopt);

// The built-in defaults: the config `1mcp init` writes.
policy::Config default_config();

// Where `serve` keeps its state (capsule signing key, caches) when it runs without a config and
// without --dir: $XDG_STATE_HOME/1mcp, else ~/.local/state/1mcp (HOME, else the passwd entry).
// Created (0700) if missing. Fails when there is no home directory or it cannot be created.
Result<std::string> default_state_dir();

}  // namespace onemcp::cli
