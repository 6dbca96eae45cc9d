// runtimes/python/runner_source.h — the Python half of the runner, embedded as source.
// Its top level runs once in the zygote (preloads modules, then freezes the heap); prepare() and
// finish() run in each forked child around the user's code, which C runs directly so that no
// runner frame sits above the user's `<module>` frame.
// Thread-safety: constant data.
#pragma once

namespace onemcp::python {

inline constexpr const char kRunnerFilename[] = "<1mcp-runner>";

inline constexpr const char kRunnerSource[] = R"PY(
import ast, atexit, builtins, gc, importlib.abc, importlib.machinery, io, linecache, os, sys, threading, traceback, types

# Imported once here so every run starts with them already in memory (fork shares the pages).
_PRELOAD = (
    'json', 're', 'math', 'collections', 'itertools', 'functools', 'datetime', 'random',
    'string', 'textwrap', 'decimal', 'fractions', 'statistics', 'typing', 'dataclasses',
    'base64', 'hashlib', 'struct', 'time', 'csv', 'copy', 'heapq', 'bisect', 'operator',
    'pathlib', 'uuid', 'enum', 'abc', 'contextlib',
)
for _name in _PRELOAD:
    __import__(_name)
try:
    import numpy  # optional; BLAS thread pools were limited to 1 before this import
except Exception:
    numpy = None


# Figures as images: a figure a run shows with matplotlib's pyplot.show(), or leaves open at its
# end, is saved to /out as a PNG (which the server returns as image content), then closed, as a
# notebook's inline backend does. pyplot is patched when it is imported, or now if preloaded.
_PLOT_DIR = '/out'
_PLOT_LIMIT = 32  # figures per run
_plots = {'saved': 0, 'warned': False}


def _save_figures(plt):
    for number in list(plt.get_fignums()):
        figure = plt.figure(number)
        if _plots['saved'] >= _PLOT_LIMIT:
            if not _plots['warned']:
                _plots['warned'] = True
                sys.stderr.write(f'[1mcp: more than {_PLOT_LIMIT} figures; the rest are not saved]\n')
        else:
            _plots['saved'] += 1
            path = os.path.join(_PLOT_DIR, f"figure-{_plots['saved']}.png")
            try:
                figure.savefig(path, format='png')
            except OSError as e:
                if not _plots['warned']:
                    _plots['warned'] = True
                    sys.stderr.write(f'[1mcp: cannot save the figure to {path}: {e.strerror}]\n')
        plt.close(figure)


def _patch_pyplot(plt):
    def show(*args, **kwargs):
        """Saves every open figure to /out as a PNG (returned as an image) and closes it."""
        _save_figures(plt)
    show.__wrapped__ = plt.show
    plt.show = show


class _PyplotHook:
    # Patches matplotlib.pyplot once it is imported (no other import is touched).
    def find_spec(self, name, path, target=None):
        if name != 'matplotlib.pyplot':
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                _patch_pyplot(module)

        spec.loader = Loader()
        return spec


sys.meta_path.insert(0, _PyplotHook())


def _preload(names):
    # The server's python.preload (ONEMCP_PYTHON_PRELOAD, comma-separated), imported once here.
    names = [n for n in names.split(',') if n]
    if any(n.split('.')[0] == 'matplotlib' for n in names):
        # A config directory of our own: one matplotlib makes finds no writable one and removes
        # with an atexit hook, which every run would then run (and fail) as it ends.
        import tempfile
        os.environ.setdefault('MPLCONFIGDIR', tempfile.mkdtemp(prefix='matplotlib-'))
    for name in names:
        try:
            __import__(name)
        except Exception as e:
            sys.stderr.write(f'1mcp-py-worker: python.preload: cannot import {name}: {e!r}\n')
    plt = sys.modules.get('matplotlib.pyplot')
    if plt is not None:
        # Draws once, so fonts and renderer caches are loaded here and shared by every run.
        figure = plt.figure()
        figure.gca().plot([0, 1], [1, 0], label='warm-up')
        figure.gca().legend()
        figure.savefig(io.BytesIO(), format='png')
        plt.close(figure)


_preload(os.environ.get('ONEMCP_PYTHON_PRELOAD', ''))

_FILENAME = '<run_py>'
_MESSAGE_LIMIT = 2000
# The value of a last expression statement is kept under a name no code can spell.
_VALUE = '1mcp value'
_VALUE_LIMIT = 10000  # characters of its repr(), as Node's inspect bounds a string


def _install_module(name, filename, source):
    # A module that lives in memory only, like this runner; linecache shows its lines in
    # tracebacks (mtime None: never reloaded from disk).
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=filename)
    exec(compile(source, filename, 'exec', dont_inherit=True), module.__dict__)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    sys.modules[name] = module
    return module


# Set by the C side before this runs (runtimes/python/mcp_tools_source.h).
_mcp_tools = _install_module('mcp_tools', _MCP_TOOLS_FILENAME, _MCP_TOOLS_SOURCE)
del _MCP_TOOLS_FILENAME, _MCP_TOOLS_SOURCE


def _writer(fd, name):
    # Unbuffered like `python -u`: whatever was printed before a kill reaches the host.
    raw = io.FileIO(fd, 'w', closefd=False)
    raw.name = name
    return io.TextIOWrapper(raw, encoding='utf-8', errors='backslashreplace',
                            write_through=True)


def _reader(fd, name):
    raw = io.FileIO(fd, 'r', closefd=False)
    raw.name = name
    return io.TextIOWrapper(io.BufferedReader(raw), encoding='utf-8',
                            errors='surrogateescape')


def _one_line(e):
    try:
        line = traceback.format_exception_only(type(e), e)[-1].strip()
    except BaseException:
        line = type(e).__name__
    return line[:_MESSAGE_LIMIT]


def _print_exception(e, tb):
    # Honour a sys.excepthook set by the code, as CPython does; the default one is replaced by
    # the traceback module because it shows the lines of <run_py> (kept in linecache).
    try:
        if sys.excepthook is sys.__excepthook__:
            traceback.print_exception(type(e), e, tb, file=sys.stderr)
        else:
            sys.excepthook(type(e), e, tb)
        return
    except BaseException as hook_error:
        failure = hook_error
    try:
        sys.stderr.write('Error in sys.excepthook:\n')
        traceback.print_exception(type(failure), failure, failure.__traceback__)
        sys.stderr.write('\nOriginal exception was:\n')
        traceback.print_exception(type(e), e, tb)
    except BaseException:
        pass


def after_fork():
    """In each run's process, before its request: the legacy global numpy generator was seeded
    once, in the zygote, so every run would draw the same numbers. The C side refills its
    MT19937 key from the kernel's CSPRNG in place when _NUMPY_MT_STATE is known (a few µs and one
    page, against 0.2 ms and 60 copied pages through numpy's API); this is the fallback."""
    if numpy is not None:
        key = numpy.frombuffer(os.urandom(624 * 4), dtype=numpy.uint32)
        numpy.random.set_state(('MT19937', key, 624))


def _numpy_mt_state():
    # The address of the legacy global generator's MT19937 state (uint32 key[624]; int pos),
    # checked against a known state set through numpy's API (which also drops a cached
    # gaussian), or 0 when numpy is absent or its layout is not that one.
    if numpy is None:
        return 0
    try:
        import ctypes
        key = numpy.arange(1, 625, dtype=numpy.uint32)
        numpy.random.set_state(('MT19937', key, 624))
        address = numpy.random.mtrand._rand._bit_generator.ctypes.state_address
        view = (ctypes.c_uint32 * 625).from_address(address)
        if list(view[:624]) != key.tolist() or view[624] != 624:
            return 0
        return address
    except Exception:
        return 0


def warm_up():
    """In a run slot whose request has not come yet: the per-run path once, so the zygote pages
    it writes are copied (and the fresh pages it allocates taken) before the call, not during it."""
    _warm_up(1, ('print(1+1)',))


def _keep_last_value(source):
    # As in a notebook: a last statement that is an expression is assigned to _VALUE instead of
    # discarded, so finish() can show it; everything else compiles exactly as written.
    tree = compile(source, _FILENAME, 'exec', ast.PyCF_ONLY_AST, dont_inherit=True)
    if tree.body and type(tree.body[-1]) is ast.Expr:
        last = tree.body[-1]
        target = ast.copy_location(ast.Name(_VALUE, ast.Store()), last)
        tree.body[-1] = ast.copy_location(ast.Assign([target], last.value), last)
    return tree


def _shown(value):
    # repr() of the value, bounded; None when there is nothing to show.
    if value is None:
        return None
    try:
        text = repr(value)
    except BaseException as e:
        _print_exception(e, e.__traceback__)
        return None
    if not isinstance(text, str):
        return None
    if len(text) > _VALUE_LIMIT:
        text = f'{text[:_VALUE_LIMIT]}... [{len(text) - _VALUE_LIMIT} more characters]'
    return text


_session = {'main': None}  # a live interpreter's __main__, kept from call to call


def prepare(source, args, env, cwd, mcp=False, site='', live=False, stdio=(0, 1, 2)):
    """Sets the process up for one run. Returns (code, globals), or (None, result) when the
    run ends before any user code runs. `mcp`: the run may call upstream tools (its relay
    serves them). `site`: the directory of the run's pip packages, searched first. `live`: a
    call of a session's live interpreter, whose __main__ (variables, imports, definitions)
    carries over from its earlier calls."""
    _mcp_tools._enabled = mcp
    if site and site not in sys.path:
        sys.path.insert(0, site)
    sys.stdin = sys.__stdin__ = _reader(stdio[0], '<stdin>')
    sys.stdout = sys.__stdout__ = _writer(stdio[1], '<stdout>')
    sys.stderr = sys.__stderr__ = _writer(stdio[2], '<stderr>')
    sys.argv = [_FILENAME, *args]
    os.environ.clear()
    os.environ.update(env)
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as e:
            message = f'cannot change directory to {cwd!r}: {e.strerror}'
            sys.stderr.write(message + '\n')
            return None, (1, 'exception', message)
    main = _session['main'] if live else None
    if live and main is None:
        # The supervisor interrupts a call past its deadline (or cancelled) with SIGINT: a
        # KeyboardInterrupt that ends the call and keeps the interpreter.
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if main is None:
        main = types.ModuleType('__main__')
        main.__builtins__ = builtins
        if live:
            _session['main'] = main
    sys.modules['__main__'] = main
    # mtime None: linecache never tries to reload it from disk.
    linecache.cache[_FILENAME] = (len(source), None, source.splitlines(True), _FILENAME)
    try:
        code = compile(_keep_last_value(source), _FILENAME, 'exec', dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError) as e:
        _print_exception(e, None)
        return None, (1, 'syntax', _one_line(e))
    return code, main.__dict__


def _outcome(e):
    if isinstance(e, SystemExit):  # CPython's rules for the exit status
        code = e.code
        if code is None:
            return 0, None, None
        if isinstance(code, int):
            return code & 0xff, None, None
        try:
            sys.stderr.write(str(code) + '\n')
        except BaseException:
            pass
        return 1, None, None
    tb = e.__traceback__
    if isinstance(e, MemoryError):
        traceback.clear_frames(tb)  # frees the locals that filled the memory before printing
        _print_exception(e, tb)
        return 1, 'memory', 'MemoryError'
    _print_exception(e, tb)
    return 1, 'exception', _one_line(e)


def _threads_to_wait_for():
    # Whether threading._shutdown() has anything to do before the run ends: a non-daemon thread
    # to join, or a threading atexit hook (concurrent.futures). Without either it would only mark
    # the main thread stopped, copying pages of a process about to exit (about 60 µs per run).
    locks = getattr(threading, '_shutdown_locks', None)
    hooks = getattr(threading, '_threading_atexits', None)
    return locks is None or hooks is None or bool(locks) or bool(hooks)


def finish(exc, namespace=None, live=False):
    """After the user's code: report its exception or the value of its last expression, then do
    what Py_FinalizeEx would (wait for threads, run atexit) without finalising; a live
    interpreter's call leaves its threads running and its atexit hooks for the end. Returns
    (exit code, error kind, message, value's repr)."""
    value = namespace.pop(_VALUE, None) if namespace is not None else None
    shown = _shown(value) if exc is None else None
    value = namespace = None
    result = (0, None, None) if exc is None else _outcome(exc)
    exc = None
    plt = sys.modules.get('matplotlib.pyplot')
    if plt is not None:
        try:
            _save_figures(plt)
        except BaseException as e:
            _print_exception(e, e.__traceback__)
    if not live:
        try:
            if _threads_to_wait_for():
                threading._shutdown()
        except BaseException:
            pass
        try:
            atexit._run_exitfuncs()
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    return (*result, shown)


def _warm_up(rounds, sources=('print(1+1)', '1/0')):
    # Fork shares memory until it is written, and merely running code writes: 3.11 specialises
    # bytecode in place and fills the type attribute cache. Running the per-run path here first
    # (output to /dev/null) leaves those writes in the shared zygote pages instead of repeating
    # them, page copy by page copy, in every child. Everything it changes is restored.
    saved = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__,
             sys.argv, sys.modules['__main__'])
    saved_env = dict(os.environ)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for _ in range(rounds):
            for source in sources:
                code, g = prepare(source, ['x'], saved_env, '', stdio=(null, null, null))
                try:
                    exec(code, g)
                except ZeroDivisionError as e:
                    _outcome(e)
                finish(None, g, live=True)  # flushes; live: no thread or atexit hook is run
    finally:
        (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__,
         sys.argv, sys.modules['__main__']) = saved
        os.environ.clear()
        os.environ.update(saved_env)
        linecache.cache.pop(_FILENAME, None)
        os.close(null)


_warm_up(10)
del _name
_NUMPY_MT_STATE = _numpy_mt_state()  # after the preloads, which may have drawn numbers


def _quiet_fork_handlers():
    # threading's and logging's after-fork handlers reset what other threads may have left
    # locked or half-done at the fork. The zygote forks from its only thread, outside Python
    # code, so in its children they have nothing to do, yet threading's alone copied about 170
    # pages per run. They run as no-ops in the zygote's children, and the C side puts the real
    # code back right after (a run that forks itself gets it). Returns (function, code) pairs.
    import threading
    if threading.active_count() != 1 or len(os.listdir('/proc/self/task')) != 1:
        return ()
    handlers = [threading._after_fork]
    logging = sys.modules.get('logging')
    if logging is not None and hasattr(logging, '_after_at_fork_child_reinit_locks'):
        handlers.append(logging._after_at_fork_child_reinit_locks)
    pairs = tuple((f, f.__code__) for f in handlers)
    for f in handlers:
        f.__code__ = (lambda: None).__code__
    return pairs
gc.collect()
_FORK_HANDLERS = _quiet_fork_handlers()  # last: no Python code runs in the zygote after this
gc.freeze()  # children never scan (and so never dirty) the preloaded objects
)PY";

}  // namespace onemcp::python
