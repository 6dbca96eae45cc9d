// sandbox/executor.h — supervisor side of a runtime worker: starts the zygote with execve and a
// minimal environment, sends it runs, and enforces wall-clock, output and cancellation limits
// from outside (SIGKILL through a pidfd), whatever the code inside does.
// Thread-safety: Zygote::run may be called from many threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "ipc/wire.h"
#include "sandbox/broker_channel.h"
#include "sandbox/cgroup.h"
#include "sandbox/outcome.h"
#include "sandbox/outdir.h"

namespace onemcp::sandbox {

struct RunSlot;  // a run's process, forked ahead of its request (executor.cc)

// Cancels a run from another thread (notifications/cancelled, client gone, shutdown).
class CancelToken {
 public:
  CancelToken();
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  const std::atomic<bool>& flag() const { return cancelled_; }  // for waits that poll a flag
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;  // eventfd, readable once cancelled
  std::atomic<bool> cancelled_{false};
};

// What is left of a run once it is answered: its process (a pidfd) and its cgroups. The
// destructor waits until the process has exited, then releases the cgroups (recycled when the
// run left nothing behind, else removed, killing whatever is still inside).
struct RunTeardown {
  RunTeardown(UniqueFd pidfd, std::unique_ptr<CgroupScope> scope, bool early)
      : pidfd(std::move(pidfd)), scope(std::move(scope)), early(early) {}
  ~RunTeardown();
  RunTeardown(const RunTeardown&) = delete;
  RunTeardown& operator=(const RunTeardown&) = delete;
  const std::vector<std::string>& dirs() const { return scope->dirs(); }

  UniqueFd pidfd;
  std::unique_ptr<CgroupScope> scope;
  // Answered before the kernel finished tearing it down (frozen and SIGKILLed, or finished with
  // its exit not awaited); false: it had exited already.
  bool early = false;
};

// A call of a live process (ipc::RunRequest::live).
struct LiveCall {
  uint64_t call = 0;   // which call of its process it was (1: the process is new)
  bool ended = false;  // the call ended the process: the next call starts a new one
  std::string note;    // for the caller, set by the server (e.g. why the interpreter is new)
};

struct RunOutput {
  std::string out;  // raw bytes (capped)
  std::string err;  // raw bytes (capped)
  int exit_code = -1;
  int signal = 0;
  Outcome outcome = Outcome::internal;
  double duration_ms = 0;
  bool truncated = false;
  ipc::ChildReport report;
  std::vector<OutFile> files;  // what the run left in /out (sandbox only)
  std::string capsule;         // id of the capsule the run executed, set by the server
  // Set when the run has cgroups or was answered before the kernel finished tearing it down (then
  // its processes are frozen and SIGKILLed, so nothing of it runs any more and the output above
  // is final). Dropping this waits until every one of them is gone, then releases the run's
  // cgroups: whoever holds it holds the run's resources, so drop it only after the answer is on
  // its way.
  std::unique_ptr<RunTeardown> teardown;
  // ipc::RunRequest::profile: the supervisor's steps and the run's own, in order of time.
  std::vector<ipc::RunStep> steps;
  std::optional<LiveCall> live;  // a live run's call
};

struct LaunchSpec {
  std::string exe;                // absolute path of the worker binary
  std::vector<std::string> args;  // argv[1..]
  std::vector<std::string> env;   // complete environment ("K=V")
};

// Per-run cgroup settings: a run may fork and start threads, up to this many tasks in all.
inline constexpr uint32_t kRunPidsMax = 128;
// Pages the interpreter dirties after fork count against the run; this is their allowance.
inline constexpr uint64_t kRunMemorySlackBytes = 32ull << 20;
// Below the server's weight (100), so a busy run cannot starve the server.
inline constexpr uint32_t kRunCpuWeight = 50;

// Host uid/gid that inner id 0 of a sandboxed worker maps to (65536 ids from here on).
inline constexpr uint32_t kHostIdBase = 1900000000;

// Run slots kept ready per worker (see Zygote): a slot takes longer to make than the rest of a
// call, so with two a client's next sequential call finds one ready.
inline constexpr size_t kReadySlots = 2;

class Zygote {
 public:
  // A session's live interpreter between its calls (ipc::RunRequest::live): its process, placed
  // in its cgroups, with its /out and broker channel. Dropping it ends the process and releases
  // its cgroups.
  class Live {
   public:
    ~Live();
    Live(const Live&) = delete;
    Live& operator=(const Live&) = delete;
    // Whether the process is still there (its own code may have ended it between calls).
    bool alive() const;
    // Calls it has served.
    uint64_t calls() const { return calls_; }

   private:
    friend class Zygote;
    Live() = default;
    std::unique_ptr<RunSlot> slot_;
    UniqueFd out_dir_;
    uint64_t calls_ = 0;
  };

  // Starts the worker process; it pre-initialises in the background (see wait_ready). With
  // `cgroups`, every run gets its own cgroup scope (memory, pids, cpu) before it may start.
  //
  // Runs are served from slots: a process forked by the zygote, placed in a fresh cgroup scope,
  // given its namespaces, mounts and root and readied (the interpreter's after-fork work) before
  // any request exists, waiting for one. After
  // the first run, `ready_slots` of them are kept ready by a background thread, so a call finds
  // one and fork, placement and after-fork work are off its path; a call that finds none makes its
  // own. A slot never serves a second run and holds nothing of anyone's until it gets a request.
  static Result<std::unique_ptr<Zygote>> start(LaunchSpec spec, CgroupManager* cgroups = nullptr,
                                               size_t ready_slots = kReadySlots);
  ~Zygote();

  // Blocks until the worker reports it is initialised (run() waits for it too).
  Status wait_ready(std::chrono::milliseconds timeout);

  // Runs one request to completion. Errors are only for failures of the machinery itself; every
  // way user code can end is a RunOutput. A run ended from outside (deadline, cancel, limits) is
  // returned once frozen and killed; its RunOutput::teardown then still holds its processes.
  // `broker` (optional) serves the run's outbound requests, `tunnels` (optional) its TCP tunnels
  // (see sandbox/broker_channel.h); without them such requests are refused.
  // `before_code` (optional) runs while the run's process builds its sandbox; the run's code
  // starts only once it returned success. A failure is returned as is, and nothing of the
  // request ran. (The server stores the run's capsule there.)
  // `heap_fd`: the memfd a request with a heap mode (ipc::RunRequest::heap) gets as ipc::kHeapFd.
  // `workspace_fd`: the detached mount a request with a workspace (ipc::RunRequest::workspace)
  // attaches at ipc::kWorkspaceDir (its first call only: the process keeps it).
  // `live` (with ipc::RunRequest::live): the call goes to the live process `*live` when it holds
  // one that is alive, else to a new one; afterwards `*live` holds the process when the call left
  // it alive and intact, and is empty when the call ended it (timeout, cancel, a limit, its own
  // exit, a crash). Each call's /out is read, then emptied, when the call is done.
  Result<RunOutput> run(const ipc::RunRequest& req, const std::string& stdin_data,
                        const CancelToken* cancel = nullptr, const BrokerHandler* broker = nullptr,
                        const BrokerTunnels* tunnels = nullptr,
                        const std::function<Status()>& before_code = {}, int heap_fd = -1,
                        std::unique_ptr<Live>* live = nullptr, int workspace_fd = -1);

  pid_t pid() const;
  // Counts the worker processes started so far: a process forked from one worker has the same
  // code addresses as every other from it, not as those of a restarted one.
  uint64_t generation() const { return generation_.load(); }

  // Slots ready now (tests).
  size_t ready_slots() const;

 private:
  friend class Live;
  Zygote(LaunchSpec spec, CgroupManager* cgroups, size_t ready_slots);
  Result<std::unique_ptr<RunSlot>> make_slot(uint64_t memory_bytes);
  std::unique_ptr<RunSlot> take_slot();
  void fill_slots();
  Status spawn_locked();
  Status wait_ready_locked(std::chrono::milliseconds timeout);
  Status write_id_maps();
  bool sandboxed() const {
    for (auto& a : spec_.args)
      if (a == "--no-sandbox") return false;
    return true;
  }
  Status send_run(const int* fds);

  LaunchSpec spec_;
  CgroupManager* cgroups_;
  std::mutex mu_;
  UniqueFd control_;
  pid_t pid_ = -1;
  std::atomic<uint64_t> generation_{0};
  bool ready_ = false;  // the ready message was received (runs sent earlier would queue)

  // The ready slots, filled by filler_ once the first run asked for one (an idle server that
  // never runs this language holds none).
  const size_t slots_wanted_;
  mutable std::mutex slots_mu_;
  std::condition_variable slots_cv_;
  std::vector<std::unique_ptr<RunSlot>> slots_;
  bool slots_on_ = false;  // the first run came
  bool stopping_ = false;
  uint64_t memory_bytes_ = 0;  // the memory limit of the last run: the likely next one
  std::thread filler_;
};

}  // namespace onemcp::sandbox
