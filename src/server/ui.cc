#include "server/ui.h"

namespace onemcp::server {

std::string_view ui_page() {
  static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>1mcp</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
textarea{width:100%;height:14rem;font:13px ui-monospace,monospace}
pre{background:#f4f4f4;padding:.75rem;white-space:pre-wrap;min-height:3rem}
.err{color:#b00}
</style></head><body>
<h1>1mcp</h1>
<p>Runs JavaScript and Python in the server's sandbox through its MCP endpoint <code>/mcp</code>.</p>
<label>Language <select id="lang"><option value="run_js">JavaScript</option>
<option value="run_py">Python</option></select></label>
<textarea id="code">console.log("Hello from 1mcp", [1, 2, 3].map(x => x * 2))</textarea>
<button id="run">Run</button> <span id="status"></span>
<h3>Output</h3><pre id="out"></pre>
<script>
let session = null;
async function rpc(method, params, id) {
  const headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"};
  if (session) { headers["Mcp-Session-Id"] = session; headers["MCP-Protocol-Version"] = "2025-11-25"; }
  const body = {jsonrpc: "2.0", method, params};
  if (id !== undefined) body.id = id;
  // With authentication on, the cookie set by /?token=<token> authenticates these requests.
  const r = await fetch("/mcp", {method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin"});
  if (r.status === 401 || r.status === 403) throw new Error("not authorized: open this page as /?token=<your token>");
  if (r.headers.get("Mcp-Session-Id")) session = r.headers.get("Mcp-Session-Id");
  return r.status === 202 ? null : r.json();
}
let nextId = 1;
document.getElementById("run").onclick = async () => {
  const out = document.getElementById("out"), status = document.getElementById("status");
  status.textContent = "running…"; out.textContent = ""; out.className = "";
  try {
    if (!session) {
      await rpc("initialize", {protocolVersion: "2025-11-25", capabilities: {},
                               clientInfo: {name: "1mcp-ui", version: "1"}}, nextId++);
      await rpc("notifications/initialized", {});
    }
    const res = await rpc("tools/call", {name: document.getElementById("lang").value,
                                         arguments: {code: document.getElementById("code").value}}, nextId++);
    if (res.error) throw new Error(res.error.message);
    out.textContent = res.result.content.map(c => c.text).join("\n");
    if (res.result.isError) out.className = "err";
    const s = res.result.structuredContent;
    status.textContent = s ? `${s.outcome}, exit ${s.exitCode}, ${s.durationMs} ms` : "";
  } catch (e) { out.textContent = String(e); out.className = "err"; status.textContent = ""; session = null; }
};
</script></body></html>
)HTML";
  return kPage;
}

}  // namespace onemcp::server
