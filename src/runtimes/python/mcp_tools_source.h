// runtimes/python/mcp_tools_source.h — the `mcp_tools` module of Python runs, embedded as
// source. The runner executes it once in the zygote and places it in sys.modules, so
// `import mcp_tools` works in every run with nothing on the filesystem. Calls travel as HTTP
// requests to the run's relay, which turns them into broker requests (worker/relay.h).
// Thread-safety: constant data.
#pragma once

namespace onemcp::python {

inline constexpr const char kMcpToolsFilename[] = "<mcp_tools>";

inline constexpr const char kMcpToolsSource[] = R"PY("""Upstream MCP tools, callable from run_py.

    from mcp_tools import filesystem
    text = filesystem.read_text_file(path="/x")

Each upstream MCP server of the 1mcp server is an attribute of this module (by its identifier),
and each of its tools an attribute of that. Calling a tool with keyword arguments, or with one
dict, returns the tool's result; a failure raises McpError. list() returns
{server: [tool, ...]}, what this run may call, and search(query) finds tools among them. call(server, tool, args) reaches any name,
including those that are not Python identifiers or that this module's own names hide.
"""

import json as _json

__all__ = ['McpError']

# The relay serves upstream tools on the run's proxy port (ipc::kProxyPort) under a reserved
# host that never resolves (worker::kRelayMcpHost).
_PROXY = ('127.0.0.1', 3128)
_ORIGIN = 'http://mcp.1mcp.invalid'
_enabled = False  # set by the runner in runs that may call upstream tools


class McpError(Exception):
    """A call to an upstream tool failed. is_error is True when the tool itself returned an
    error result, False when the call was refused or could not be made."""

    def __init__(self, message, is_error=False):
        super().__init__(message)
        self.is_error = is_error


def _post(path, payload):
    if not _enabled:
        raise McpError('code mode is not enabled for this run')
    body = _json.dumps(payload, allow_nan=False).encode()
    import http.client  # here, not at the top: the zygote stays small for the runs not using it
    conn = http.client.HTTPConnection(*_PROXY)
    try:
        conn.request('POST', _ORIGIN + path, body, {'Content-Type': 'application/json'})
        response = conn.getresponse()
        data = response.read()
    except OSError as e:
        raise McpError(f'upstream tools are not available: {e}') from None
    finally:
        conn.close()
    if response.status != 200:
        text = data.decode('utf-8', 'replace').strip()
        raise McpError(f'upstream tool request refused: {response.status} {text}')
    try:
        answer = _json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise McpError('invalid answer from the server')
    if answer.get('ok') is True:
        return answer.get('result')
    error = answer.get('error')
    raise McpError(error if isinstance(error, str) else 'the call failed',
                   answer.get('isError') is True)


def call(server, tool, args=None, /, **kwargs):
    """Calls `tool` of upstream `server` with the dict `args` and the keyword arguments."""
    if not isinstance(server, str) or not isinstance(tool, str):
        raise TypeError('server and tool must be strings')
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise TypeError(f'{server}.{tool}: the arguments must be keyword arguments or one dict')
    arguments = {**args, **kwargs}
    if not all(isinstance(k, str) for k in arguments):
        raise TypeError(f'{server}.{tool}: argument names must be strings')
    return _post('/call', {'server': server, 'tool': tool, 'args': arguments})


def list():
    """{server: [tool, ...]}: the upstream tools this run may call."""
    return _post('/list', {})


def search(query, detail='descriptions', limit=10):
    """{'total': n, 'matches': [{'server', 'tool', 'name', ...}]}: the tools this run may call
    that match `query`, best first. detail: 'names', 'descriptions' or 'signatures' (with each
    tool's TypeScript signature and JSON Schemas); limit: 1 to 50."""
    if not isinstance(query, str):
        raise TypeError('search: the query must be a string')
    return _post('/search', {'query': query, 'detail': detail, 'limit': limit})


def _tool(server, tool):
    def tool_function(args=None, /, **kwargs):
        return call(server, tool, args, **kwargs)

    tool_function.__name__ = tool
    tool_function.__qualname__ = f'{server}.{tool}'
    return tool_function


class _Server:
    """An upstream MCP server: its tools are its attributes."""

    __slots__ = ('_name',)

    def __init__(self, name):
        self._name = name

    def __getattr__(self, tool):
        if tool.startswith('__') and tool.endswith('__'):
            raise AttributeError(tool)
        return _tool(self._name, tool)

    def __repr__(self):
        return f'<upstream MCP server {self._name}>'


def __getattr__(name):
    # Names with "_" are Python's (__path__, __wrapped__, ...); server names start with a letter.
    if name.startswith('_'):
        raise AttributeError(f"module 'mcp_tools' has no attribute {name!r}")
    return _Server(name)
)PY";

}  // namespace onemcp::python
