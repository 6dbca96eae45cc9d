// ipc/wire.h — the supervisor <-> worker-zygote protocol.
//
// The supervisor owns one SOCK_SEQPACKET control socket per zygote. To make a run slot (a process
// forked before its request, see sandbox/executor.h) it sends one message carrying, by
// SCM_RIGHTS, in this order (kRunFdCount):
//   [0] reply socket   (SOCK_SEQPACKET; the zygote reports Started/Exited on it, then closes it)
//   [1] stdout pipe    (fd 1 of the run)
//   [2] stderr pipe    (fd 2)
//   [3] result pipe    (fd 3: the child writes one ChildReport JSON here before exiting)
//   [4] slot socket    (stream socketpair; fd 5 of the run until its code starts. The child
//                       waits for kSlotPlaced, sent once the supervisor has placed it in its
//                       cgroups, so nothing runs outside its limits; then for kSlotRequest with
//                       the request memfd (RunRequest as JSON; parsed only inside the forked
//                       child, never by the zygote), the stdin memfd (fd 0) and, for a run
//                       whose request names a heap (RunRequest::heap), its memfd (fd 6,
//                       kHeapFd) and, for a run with a workspace (RunRequest::workspace), a
//                       detached mount of it (after the heap, if any); in the sandbox
//                       it sends back kSlotOutDir with an O_PATH fd of its /out; its code starts
//                       on kSlotGo)
//   [5] broker socket  (stream socketpair, fd 4 of the run: its only way out. Frames both ways
//                       are a 4-byte little-endian length and that many bytes of JSON; requests
//                       {id, op, ...} are answered by {id, ok, ...} in any order)
// A live run (RunRequest::live) keeps its process after its first call: it closes fds 0-3 when the
// call is done, says so with kSlotDone on its slot socket, and waits on its slot socket (fd 5,
// kept) for the next kSlotRequest, which then carries the request memfd, the stdin memfd and the
// call's new stdout, stderr and result pipes (kLiveCallFdCount); the call's code starts on kSlotGo
// again. Thread-safety: pure functions; fd helpers are safe to call from any thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace onemcp::ipc {

inline constexpr int kResultFd = 3;                // fd number of the result pipe inside a run
inline constexpr uint32_t kReadyTag = 0x52454459;  // zygote -> supervisor once pre-initialised
inline constexpr uint32_t kIdMapTag = 0x49444d50;  // zygote asks for uid/gid maps; supervisor acks
inline constexpr int kBrokerFd = 4;  // fd number of the broker channel inside a run
// A worker starts with its control socket on fd 3 and its arguments on fd 4: a memfd of
// NUL-terminated strings. Its argv is its name only, because a run can read the command line of
// its own processes (forks of the worker) and the arguments name host paths.
inline constexpr int kWorkerArgsFd = 4;
inline constexpr size_t kRunFdCount = 6;  // the fds of a run slot (above)
inline constexpr char kSlotPlaced = 'p';   // the run's process is in its cgroups
inline constexpr char kSlotRequest = 'r';  // carries the request memfd and the stdin memfd
inline constexpr char kSlotOutDir = 'o';   // run -> supervisor: carries its /out (O_PATH)
inline constexpr char kSlotGo = 'g';       // the run's code may start (its capsule is stored)
// Live run -> supervisor: the call is done (its report written, fds 0-3 closed), even when a
// process its code forked still holds copies of them.
inline constexpr char kSlotDone = 'd';
inline constexpr int kSlotFd = 5;          // the slot socket inside a run, until kSlotGo
inline constexpr int kHeapFd = 6;          // the heap memfd inside a run that names one
inline constexpr uint32_t kRunUid = 1000;  // a run's uid and gid inside its user namespace
inline constexpr size_t kLiveCallFdCount = 5;  // request, stdin, stdout, stderr, result
// Where a run with a workspace (RunRequest::workspace) sees it, read-write.
inline constexpr const char* kWorkspaceDir = "/work";
inline constexpr size_t kMaxFrameBytes = 32u << 20;
// Requests a run may have in flight on its broker channel at once (the JS runtime queues the rest).
inline constexpr size_t kMaxBrokerRequestsInFlight = 8;
// TCP port of the in-sandbox HTTP(S) proxy a relay run's Python reaches on 127.0.0.1.
inline constexpr uint16_t kProxyPort = 3128;

// What a run may write when nothing says otherwise, and the worker's writable roots by default.
inline std::vector<std::string> default_writable() { return {"/tmp", "/out"}; }

// JS runs with an npm dependency layer: whether the run's interpreter comes from a heap
// snapshot (runtimes/js/arena.h). `make`: evaluate the prelude and `deps_code` into the heap memfd
// and stop (no `code`); the report says how many bytes of it are the heap. `use`: continue with
// the interpreter in that heap, whose layer is already loaded (no `deps_code`).
enum class HeapMode { none, make, use };

// A file written into the run's working directory before its code starts (the call's `files`):
// a relative path of plain components, validated by the server and again by the run.
struct InputFile {
  std::string path;
  std::string data;
};

inline constexpr size_t kMaxInputFiles = 64;
inline constexpr size_t kMaxInputBytes = 4u << 20;  // all files' content together

// Whether `path` may name an input file: relative, components of 1 to 255 bytes separated by
// single slashes, none of them "." or "..", no NUL, at most 1024 bytes. Says why not.
Status check_input_path(std::string_view path);

// Where a run that may call upstream tools reads their declarations (server/mcps_tree.h).
inline constexpr const char* kMcpsDir = "/mcps";

// What a run is asked to do. Limits are already validated and clamped by the supervisor.
struct RunRequest {
  std::string code;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;             // empty: runtime default
  std::vector<InputFile> files;  // written into cwd, as the run's user, before the code starts
  uint64_t timeout_ms = 0;     // enforced from outside; runtimes may also stop early
  uint64_t mem_mb = 0;         // heap budget of the run
  uint64_t stdout_bytes = 0;   // enforced by the supervisor
  bool transpiled = false;     // JS: code already went through esbuild
  // JS: the npm dependency layer (deps/npm.h), evaluated before `code`; it provides the
  // modules require() and the rewritten import declarations find. Empty: no dependencies.
  std::string deps_code;
  HeapMode heap = HeapMode::none;
  // Python: the key of the run's pip dependency set (deps/pip.h), 64 lowercase hex digits; the
  // worker shows that set's site directory, read-only, first on sys.path. Empty: none.
  std::string pip_key;
  // Python with network access: the run gets its own network namespace and a relay process
  // serving an HTTP(S) proxy on 127.0.0.1:kProxyPort; only the relay keeps the broker fd.
  bool network_relay = false;
  // The run may call upstream MCP tools ("mcp" and "mcp_list" broker requests, see
  // sandbox/broker_channel.h; the supervisor decides each one). JS sends them on its broker fd
  // whatever this says; Python only through the relay, which this starts as network_relay does
  // (without network_relay its proxy serves upstream tools only: the broker refuses fetches).
  bool mcp = false;
  // With mcp: the key of the run's /mcps tree (server/mcps_tree.h), 64 lowercase hex digits; the
  // worker binds that directory of its trees root read-only at kMcpsDir. Empty: no /mcps. A live
  // run keeps the tree of its first call.
  std::string mcps_key;
  // Filesystem policy, paths inside the sandbox's root: each writable path is backed by a fresh
  // size- and inode-limited tmpfs; nothing else may be written, and only `readonly` (plus what
  // the interpreter itself loads) may be read.
  std::vector<std::string> readonly{"/"};
  std::vector<std::string> writable = default_writable();
  // The child reports the time and page faults of each of its steps (ChildReport::steps).
  bool profile = false;
  // The process stays after this call and serves the next calls of its session, in the same
  // interpreter (see above); later calls' requests repeat the sandbox fields of the first.
  bool live = false;
  // A detached mount of the session's workspace comes with the request: the run mounts it at
  // kWorkspaceDir (read-write, nosuid, nodev, noexec).
  bool workspace = false;

  // Whether a Python run gets a relay process (and then keeps no broker fd itself).
  bool relay() const { return network_relay || mcp; }
};

// JSON text; a non-empty deps_code follows it raw, after one NUL byte. decode_request also
// accepts the layer as a "depsCode" string in the JSON (requests given on a command line).
std::string encode(const RunRequest& r);
Result<RunRequest> decode_request(const std::string& json);

// One step of a run, for the per-step breakdown of `1mcp serve --profile-runs`: when it ended
// (CLOCK_MONOTONIC, shared by the supervisor and every namespace of the sandbox) and the minor
// page faults of the run's process from its fork to then (-1: not the run's process).
struct RunStep {
  std::string name;
  int64_t ns = 0;
  int64_t minflt = -1;
};
inline constexpr size_t kMaxRunSteps = 64;  // a report's steps beyond these are dropped

// What the child reports about itself on fd 3 (all optional).
struct ChildReport {
  std::optional<std::string> value;          // JS: inspect() of the last expression value
  std::optional<std::string> error_kind;     // "syntax", "exception", "memory", "timeout", "internal"
  std::optional<std::string> error_message;  // one-line message (the full trace is on stderr)
  bool needs_transpile = false;              // JS: plain parse failed, ask for esbuild
  std::vector<RunStep> steps;                // only when the request asked to profile
  // The exit code the run's process is about to exit with, once it has closed its output: the
  // supervisor may answer without waiting for the kernel to tear the process down.
  std::optional<int> exit_code;
  // A HeapMode::make run that built its heap: the bytes of the memfd the heap occupies.
  std::optional<uint64_t> heap_bytes;
  // A live run whose call is done and whose process stays for the next one (the interpreter and
  // its state are intact).
  bool kept = false;
};

std::string encode(const ChildReport& r);
ChildReport decode_report(const std::string& json);  // garbage yields an empty report

// Messages the zygote sends on a run's reply socket.
enum class ReplyKind : uint32_t { started = 1, exited = 2, failed = 3 };
struct Reply {
  ReplyKind kind;
  int32_t pid;     // started: host pid of the run
  int32_t status;  // exited: wait status; failed: errno
};

// SCM_RIGHTS helpers. recv returns the payload size (0 = peer closed).
Status send_with_fds(int sock, const void* data, size_t len, const int* fds, size_t nfds);
Result<size_t> recv_with_fds(int sock, void* data, size_t len, std::vector<UniqueFd>* fds,
                             size_t max_fds);

// Broker channel framing: every frame is a FrameHeader and `length` bytes of JSON. frame()
// makes one; FrameReader collects them from bytes read in any chunking. The one definition of the
// framing, for the JS runtime, the relay, the supervisor's channel and the tests.
struct FrameHeader {
  static constexpr size_t kBytes = 4;  // the payload's length, little-endian
  uint32_t length = 0;
  void write(char* out) const;              // kBytes bytes
  static FrameHeader read(const char* in);  // kBytes bytes
  bool acceptable() const { return length <= kMaxFrameBytes; }
};
std::string frame(std::string_view payload);
class FrameReader {
 public:
  // Appends bytes; false when a frame announces more than kMaxFrameBytes (the peer is broken).
  bool feed(const char* data, size_t len);
  // The next complete frame, if any.
  std::optional<std::string> next();
  // The first unread frame announces more than kMaxFrameBytes (the peer is broken).
  bool garbled() const;
  // Bytes held: what is unread, plus at most as much again of what was read (compacted lazily).
  size_t held() const { return buf_.size(); }
  // Bytes received but not yet returned as frames (a frame cut in two so far).
  size_t unread() const { return buf_.size() - off_; }

 private:
  std::string buf_;
  size_t off_ = 0;
};

// Creates a sealed-size memfd holding `bytes`, positioned at 0.
Result<UniqueFd> memfd_with(const char* name, const std::string& bytes);
// Reads a whole fd from offset 0 (for memfds), up to `max` bytes.
Result<std::string> read_all(int fd, size_t max);

}  // namespace onemcp::ipc
