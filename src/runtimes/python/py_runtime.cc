// The only translation unit that uses the CPython C API.
#define PY_SSIZE_T_CLEAN
#include "runtimes/python/py_runtime.h"

#include <Python.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "runtimes/python/mcp_tools_source.h"
#include "runtimes/python/runner_source.h"

namespace onemcp::python {
namespace {

// One owned reference.
class Ref {
 public:
  Ref() = default;
  explicit Ref(PyObject* p) : p_(p) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    if (this != &o) Py_XSETREF(p_, std::exchange(o.p_, nullptr));
    return *this;
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  ~Ref() { Py_XDECREF(p_); }
  PyObject* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  PyObject* p_ = nullptr;
};

// Writes all of `data` with no allocation (usable when memory is exhausted).
void write_fully(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= size_t(n);
  }
}

// "Type: message" of the pending Python exception, which it clears (also when str() fails).
std::string take_error_text() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  Ref t(type), v(value), b(tb);
  std::string text = "unknown error";
  if (v) {
    Ref s(PyObject_Str(v.get()));
    const char* utf8 = s ? PyUnicode_AsUTF8(s.get()) : nullptr;
    if (utf8) text = std::string(Py_TYPE(v.get())->tp_name) + ": " + utf8;
  }
  PyErr_Clear();
  return text;
}

Ref str_from(const std::string& s, const char* errors) {
  return Ref(PyUnicode_DecodeUTF8(s.data(), Py_ssize_t(s.size()), errors));
}

// A str as UTF-8; lone surrogates (bytes the code could not decode) become escapes.
std::optional<std::string> utf8_of(PyObject* o) {
  if (o == Py_None || !PyUnicode_Check(o)) return std::nullopt;
  Ref bytes(PyUnicode_AsEncodedString(o, "utf-8", "backslashreplace"));
  if (!bytes) {
    PyErr_Clear();
    return std::nullopt;
  }
  return std::string(PyBytes_AS_STRING(bytes.get()), size_t(PyBytes_GET_SIZE(bytes.get())));
}

Status check(PyStatus status, const char* what) {
  if (!PyStatus_Exception(status)) return {};
  std::string msg = std::string(what) + ": " + (status.err_msg ? status.err_msg : "failed");
  return make_error(std::move(msg));
}

Status initialize_interpreter() {
  // BLAS libraries start their thread pools when numpy is imported; the zygote must stay
  // single-threaded because it forks. Set before Python snapshots the environment.
  for (const char* var : {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}) {
    ::setenv(var, "1", 1);
  }
  // Each glibc arena reserves 64 MiB of address space, which counts against the run's
  // RLIMIT_AS: a few threads would eat a small memory budget without allocating anything.
  ::mallopt(M_ARENA_MAX, 2);

  PyPreConfig pre;
  PyPreConfig_InitIsolatedConfig(&pre);
  pre.utf8_mode = 1;  // UTF-8 file names and streams whatever the locale
  if (auto s = check(Py_PreInitialize(&pre), "Python pre-initialisation"); !s) return s;

  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);  // ignores PYTHON* variables and the user site
  config.site_import = 1;                // Debian's dist-packages (numpy) come from `site`
  config.write_bytecode = 0;
  Status st = check(PyConfig_SetBytesString(&config, &config.home, ONEMCP_PYTHON_HOME), "home");
#ifdef ONEMCP_PYTHON_EXECUTABLE
  if (st) {
    st = check(PyConfig_SetBytesString(&config, &config.executable, ONEMCP_PYTHON_EXECUTABLE),
               "executable");
  }
#endif
  if (st) st = check(Py_InitializeFromConfig(&config), "Python initialisation");
  PyConfig_Clear(&config);
  return st;
}

class PythonRuntime final : public worker::Runtime {
 public:
  PythonRuntime() {
    ipc::ChildReport memory;
    memory.error_kind = "memory";
    memory.error_message = "MemoryError";
    memory_report_ = ipc::encode(memory);
  }

  Status init() override {
    if (auto s = initialize_interpreter(); !s) return s;
    Ref globals(PyDict_New());
    Ref mcp_tools_filename(PyUnicode_FromString(kMcpToolsFilename));
    Ref mcp_tools_source(PyUnicode_FromString(kMcpToolsSource));
    if (!globals || !mcp_tools_filename || !mcp_tools_source ||
        PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) != 0 ||
        PyDict_SetItemString(globals.get(), "_MCP_TOOLS_FILENAME", mcp_tools_filename.get()) != 0 ||
        PyDict_SetItemString(globals.get(), "_MCP_TOOLS_SOURCE", mcp_tools_source.get()) != 0) {
      return make_error("runner setup: " + take_error_text());
    }
    Ref code(Py_CompileString(kRunnerSource, kRunnerFilename, Py_file_input));
    if (!code) return make_error("runner compile: " + take_error_text());
    Ref done(PyEval_EvalCode(code.get(), globals.get(), globals.get()));
    if (!done) return make_error("runner setup: " + take_error_text());

    PyObject* prepare = PyDict_GetItemString(globals.get(), "prepare");  // borrowed
    PyObject* finish = PyDict_GetItemString(globals.get(), "finish");
    PyObject* after_fork = PyDict_GetItemString(globals.get(), "after_fork");
    PyObject* warm_up = PyDict_GetItemString(globals.get(), "warm_up");
    if (!prepare || !finish || !after_fork || !warm_up)
      return make_error("runner setup: prepare/finish/after_fork/warm_up missing");
    prepare_ = Ref(Py_NewRef(prepare));
    finish_ = Ref(Py_NewRef(finish));
    after_fork_ = Ref(Py_NewRef(after_fork));
    warm_up_ = Ref(Py_NewRef(warm_up));
    if (PyObject* state = PyDict_GetItemString(globals.get(), "_NUMPY_MT_STATE"))
      numpy_mt_state_ = reinterpret_cast<uint32_t*>(PyLong_AsVoidPtr(state));
    if (PyErr_Occurred()) return make_error("runner setup: " + take_error_text());
    PyObject* handlers = PyDict_GetItemString(globals.get(), "_FORK_HANDLERS");
    if (!handlers || !PyTuple_Check(handlers))
      return make_error("runner setup: _FORK_HANDLERS missing");
    fork_handlers_ = Ref(Py_NewRef(handlers));
    // Hand freed startup memory back so each fork copies fewer page-table entries.
    ::malloc_trim(0);
    return {};
  }

  void before_fork() override { PyOS_BeforeFork(); }
  void after_fork_parent() override { PyOS_AfterFork_Parent(); }
  void after_fork_child() override {
    PyOS_AfterFork_Child();
    // The after-fork handlers the runner made no-ops for the zygote's forks get their code back.
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fork_handlers_.get()); ++i) {
      PyObject* pair = PyTuple_GET_ITEM(fork_handlers_.get(), i);
      if (PyObject_SetAttrString(PyTuple_GET_ITEM(pair, 0), "__code__",
                                 PyTuple_GET_ITEM(pair, 1)) != 0) {
        PyErr_Print();
        _exit(125);
      }
    }
    worker::mark_step("run: CPython after fork");
    // Without a fresh seed every run would draw the zygote's numbers: not a run to start.
    if (numpy_mt_state_) {
      // numpy's legacy MT19937 state: a new key from the kernel's CSPRNG, pos at the end so
      // the first draw regenerates from it, as numpy.random.set_state(('MT19937', key, 624)).
      auto* key = reinterpret_cast<char*>(numpy_mt_state_);
      for (size_t got = 0; got < 624 * sizeof(uint32_t);) {
        const ssize_t n = ::getrandom(key + got, 624 * sizeof(uint32_t) - got, 0);
        if (n < 0 && errno != EINTR) _exit(125);
        if (n > 0) got += size_t(n);
      }
      const int pos = 624;
      std::memcpy(numpy_mt_state_ + 624, &pos, sizeof pos);
      return;
    }
    Ref done(PyObject_CallNoArgs(after_fork_.get()));
    if (!done) {
      PyErr_Print();
      _exit(125);
    }
  }
  void warm_up() override {
    Ref done(PyObject_CallNoArgs(warm_up_.get()));
    if (!done) PyErr_Clear();  // only a head start: the run does the same work anyway
  }
  bool uses_relay() const override { return true; }

  int run(const ipc::RunRequest& request) override {
    // Programs the code starts must not inherit the report pipe.
    ::fcntl(ipc::kResultFd, F_SETFD, FD_CLOEXEC);
    run_pid_ = ::getpid();
    reported_ = false;  // a live interpreter reports once per call
    try {
      return run_code(request) & 0xff;
    } catch (...) {  // std::bad_alloc in our own code: the run exhausted its address space
      report_memory();
      return 1;
    }
  }

 private:
  int run_code(const ipc::RunRequest& request) {
    // An interrupt that came after the previous call of a live interpreter had finished is not
    // this call's.
    if (request.live && PyErr_CheckSignals() != 0) PyErr_Clear();
    Ref source = str_from(request.code, "replace");
    Ref args(PyList_New(0));
    Ref env(PyDict_New());
    Ref cwd = str_from(request.cwd, "surrogateescape");
    Ref site = str_from(worker::pip_site_dir(request), "surrogateescape");
    if (!source || !args || !env || !cwd || !site) return runner_failed();
    for (const auto& a : request.args) {
      Ref s = str_from(a, "surrogateescape");
      if (!s || PyList_Append(args.get(), s.get()) != 0) return runner_failed();
    }
    for (const auto& [k, v] : request.env) {
      Ref key = str_from(k, "surrogateescape");
      Ref value = str_from(v, "surrogateescape");
      if (!key || !value || PyDict_SetItem(env.get(), key.get(), value.get()) != 0) {
        return runner_failed();
      }
    }

    PyObject* mcp = request.mcp ? Py_True : Py_False;  // borrowed
    PyObject* live = request.live ? Py_True : Py_False;  // borrowed
    Ref prepared(PyObject_CallFunctionObjArgs(prepare_.get(), source.get(), args.get(), env.get(),
                                              cwd.get(), mcp, site.get(), live, nullptr));
    if (!prepared) return runner_failed();
    if (!PyTuple_Check(prepared.get()) || PyTuple_GET_SIZE(prepared.get()) != 2) {
      return internal_error("prepare() returned an unexpected value");
    }
    PyObject* code = PyTuple_GET_ITEM(prepared.get(), 0);
    if (code == Py_None) return conclude(PyTuple_GET_ITEM(prepared.get(), 1));
    Ref globals(Py_NewRef(PyTuple_GET_ITEM(prepared.get(), 1)));

    // Evaluated from C, not from the Python runner, so tracebacks and sys._getframe() see the
    // user's <module> frame at the bottom of the stack, exactly as under `python file.py`.
    worker::mark_step("run: code compiled");
    Ref value(PyEval_EvalCode(code, globals.get(), globals.get()));
    worker::mark_step("run: code evaluated");
    Ref exc;
    if (value) {
      exc = Ref(Py_NewRef(Py_None));
    } else {
      PyObject *type, *val, *tb;
      PyErr_Fetch(&type, &val, &tb);
      PyErr_NormalizeException(&type, &val, &tb);
      if (val && tb) PyException_SetTraceback(val, tb);
      Py_XDECREF(type);
      Py_XDECREF(tb);
      if (!val) return internal_error("exception without a value");
      exc = Ref(val);
      // Report first: printing the traceback may itself run out of memory.
      if (PyErr_GivenExceptionMatches(val, PyExc_MemoryError)) report_memory();
    }
    value = Ref();
    prepared = Ref();
    Ref result(PyObject_CallFunctionObjArgs(finish_.get(), exc.get(), globals.get(),
                                            request.live ? Py_True : Py_False, nullptr));
    exc = Ref();
    globals = Ref();
    if (!result) return runner_failed();
    return conclude(result.get());
  }

  // result = (exit code, error kind or None, message or None[, value's repr or None]), from the
  // runner.
  int conclude(PyObject* result) {
    const Py_ssize_t size = PyTuple_Check(result) ? PyTuple_GET_SIZE(result) : 0;
    if (size != 3 && size != 4) {
      return internal_error("runner returned an unexpected value");
    }
    int code = int(PyLong_AsLong(PyTuple_GET_ITEM(result, 0)));
    if (PyErr_Occurred()) {
      PyErr_Clear();
      code = 1;
    }
    ipc::ChildReport report;
    report.exit_code = code & 0xff;
    report.error_kind = utf8_of(PyTuple_GET_ITEM(result, 1));
    report.error_message = utf8_of(PyTuple_GET_ITEM(result, 2));
    if (size == 4) report.value = utf8_of(PyTuple_GET_ITEM(result, 3));
    if (report.error_kind == "memory") {
      report_memory();
    } else {
      write_report(report);
    }
    return code;
  }

  // prepare() or finish() raised: the run's own machinery failed (or memory ran out in it).
  int runner_failed() {
    if (PyErr_ExceptionMatches(PyExc_MemoryError)) {
      PyErr_Clear();
      static constexpr char kMessage[] = "MemoryError\n";
      write_fully(2, kMessage, sizeof kMessage - 1);
      report_memory();
      return 1;
    }
    return internal_error(take_error_text());
  }

  int internal_error(const std::string& message) {
    std::string line = "1mcp-py-worker: internal error: " + message + "\n";
    write_fully(2, line.data(), line.size());
    ipc::ChildReport report;
    report.exit_code = 1;
    report.error_kind = "internal";
    report.error_message = message;
    write_report(report);
    return 1;
  }

  // Only the run's own process reports: a child it forked with os.fork() returns through here
  // too and must not add a second report.
  bool owns_report() {
    if (reported_ || ::getpid() != run_pid_) return false;
    reported_ = true;
    return true;
  }

  void report_memory() {
    if (owns_report()) write_fully(ipc::kResultFd, memory_report_.data(), memory_report_.size());
  }

  void write_report(const ipc::ChildReport& report) {
    if (!owns_report()) return;
    try {
      worker::write_report(report);
    } catch (...) {  // std::bad_alloc once the memory budget is gone: the report is best effort
    }
  }

  Ref prepare_;
  Ref finish_;
  Ref after_fork_;
  uint32_t* numpy_mt_state_ = nullptr;  // see _numpy_mt_state() in the runner
  Ref fork_handlers_;                   // see _quiet_fork_handlers() in the runner
  Ref warm_up_;
  std::string memory_report_;  // encoded in the zygote: no allocation is needed to send it
  pid_t run_pid_ = -1;
  bool reported_ = false;
};

}  // namespace

std::unique_ptr<worker::Runtime> make_runtime() { return std::make_unique<PythonRuntime>(); }

}  // namespace onemcp::python
