// The playground page: editor, inputs, limits, run/stop, output.
import "./style.css";
import { Editor, type Language } from "./editor";
import { api, Cancelled, McpClient, storedToken, storeToken, type Call, type Notification } from "./mcp";
import { addHistory, clearHistory, loadHistory, loadServerRuns, renderHistory, type HistoryEntry } from "./history";
import { capsulePolicy, renderError, renderResult, type CallToolResult } from "./output";
import { SAMPLES } from "./samples";
import { Sessions } from "./sessions";
import { renderUpstreams } from "./upstreams";

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing from the page`);
  return e as T;
};

const mcp = new McpClient();
const langSelect = $<HTMLSelectElement>("lang");
const runButton = $<HTMLButtonElement>("run");
const stopButton = $<HTMLButtonElement>("stop");
const status = $<HTMLSpanElement>("status");
const output = $<HTMLDivElement>("output");
const progress = $<HTMLProgressElement>("progress");
const policyView = $<HTMLPreElement>("effective-policy");
const serverLimits = $<HTMLSpanElement>("server-limits");

const sessions = new Sessions(mcp, $<HTMLSelectElement>("session"), $("workspace"));
let lang: Language = langSelect.value === "py" ? "py" : "js";
const editor = new Editor($("editor"), SAMPLES[lang], lang, () => void run());
let running: Call<CallToolResult> | null = null;
let objectUrls: string[] = [];

function showLanguage(): void {
  document.querySelectorAll<HTMLElement>("[data-lang]").forEach((e) => (e.hidden = e.dataset.lang !== lang));
}

function setLanguage(next: Language): void {
  // An untouched sample follows the language; code someone wrote stays.
  if (editor.text === SAMPLES[lang]) editor.text = SAMPLES[next];
  lang = next;
  langSelect.value = next;
  editor.setLanguage(lang);
  showLanguage();
}

langSelect.addEventListener("change", () => setLanguage(langSelect.value === "py" ? "py" : "js"));
showLanguage();

function lines(id: string): string[] {
  return $<HTMLTextAreaElement>(id)
    .value.split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function intField(id: string): number | undefined {
  const v = $<HTMLInputElement>(id).value.trim();
  return v === "" ? undefined : Number(v);
}

/** The tool's arguments from the editor and the input fields. */
function argumentsOf(): Record<string, unknown> {
  const args: Record<string, unknown> = { code: editor.text };
  if (sessions.current) args.session = sessions.current;
  const stdin = $<HTMLTextAreaElement>("stdin").value;
  if (stdin) args.stdin = stdin;
  const argv = lines("args");
  if (argv.length) args.args = argv;
  const env: Record<string, string> = {};
  for (const l of lines("env")) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new Error(`env: "${l}" is not NAME=value`);
    env[l.slice(0, eq)] = l.slice(eq + 1);
  }
  if (Object.keys(env).length) args.env = env;
  if (lang === "js") {
    const deps: Record<string, string> = {};
    for (const l of lines("npm")) {
      const at = l.lastIndexOf("@");
      if (at > 0) deps[l.slice(0, at)] = l.slice(at + 1);
      else deps[l] = "latest";
    }
    if (Object.keys(deps).length) args.npm = { dependencies: deps };
  } else {
    const reqs = lines("pip");
    if (reqs.length) args.pip = { requirements: reqs };
  }
  const limits: Record<string, number> = {};
  for (const k of ["timeoutMs", "memMb", "stdoutBytes"]) {
    const v = intField(`limit-${k}`);
    if (v === undefined) continue;
    // Tighten-only: the server would clamp a wider value without a word; say so before running.
    const input = $<HTMLInputElement>(`limit-${k}`);
    const max = input.max === "" ? Infinity : Number(input.max);
    const min = Number(input.min || "1");
    if (!Number.isInteger(v) || v < min) throw new Error(`${k}: a whole number, at least ${min}`);
    if (v > max) throw new Error(`${k}: ${v} is above this server's ${max}; a run can only tighten the limits`);
    limits[k] = v;
  }
  const policy: Record<string, unknown> = {};
  if (Object.keys(limits).length) policy.limits = limits;
  if ($<HTMLInputElement>("no-network").checked) policy.network = { allowedDomains: [] };
  if (Object.keys(policy).length) args.policy = policy;
  return args;
}

const field = (id: string) => $<HTMLInputElement | HTMLTextAreaElement>(id);

/** The inverse of argumentsOf: puts a run's arguments back into the editor and the fields. */
function applyArguments(next: Language, args: Record<string, unknown>): void {
  setLanguage(next);
  sessions.current = typeof args.session === "string" ? args.session : undefined;
  editor.text = typeof args.code === "string" ? args.code : "";
  field("stdin").value = typeof args.stdin === "string" ? args.stdin : "";
  field("args").value = Array.isArray(args.args) ? args.args.join("\n") : "";
  const env = (args.env ?? {}) as Record<string, string>;
  field("env").value = Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n");
  const deps = ((args.npm ?? {}) as { dependencies?: Record<string, string> }).dependencies ?? {};
  field("npm").value = Object.entries(deps).map(([k, v]) => `${k}@${v}`).join("\n");
  field("pip").value = (((args.pip ?? {}) as { requirements?: string[] }).requirements ?? []).join("\n");
  const policy = (args.policy ?? {}) as { limits?: Record<string, number>; network?: { allowedDomains?: string[] } };
  for (const k of ["timeoutMs", "memMb", "stdoutBytes"]) field(`limit-${k}`).value = policy.limits?.[k]?.toString() ?? "";
  $<HTMLInputElement>("no-network").checked = policy.network?.allowedDomains?.length === 0;
}

/** A history entry's arguments back in the form; run again as well. */
const loadEntry = (e: HistoryEntry): void => applyArguments(e.lang, e.args);
const rerunEntry = (e: HistoryEntry): void => {
  loadEntry(e);
  void run();
};

const historyList = $<HTMLDivElement>("history");
function showHistory(entries: HistoryEntry[]): void {
  renderHistory(historyList, entries, loadEntry, rerunEntry);
}
showHistory(loadHistory());

const serverHistory = $<HTMLDivElement>("server-history");
/** The runs the server keeps for this caller (its token), refreshed after every run. */
async function showServerHistory(): Promise<void> {
  const note = $("server-history-note");
  try {
    const { kept, entries } = await loadServerRuns();
    note.textContent = kept
      ? "The last runs made with this token, from any client, kept in the server's memory (environment values never)."
      : "This server keeps no runs for clients without a token: they would all see each other's.";
    renderHistory(serverHistory, entries, loadEntry, rerunEntry);
    if (!kept) serverHistory.replaceChildren();
  } catch (e) {
    note.textContent = e instanceof Error ? e.message : String(e);
  }
}
$<HTMLButtonElement>("clear-history").addEventListener("click", () => {
  clearHistory();
  showHistory([]);
});

function setRunning(call: Call<CallToolResult> | null): void {
  running = call;
  // Focus follows the enabled button: a keyboard user's Enter on Run, then Enter again, stops.
  const focused = document.activeElement;
  runButton.disabled = call !== null;
  stopButton.disabled = call === null;
  if (call && focused === runButton) stopButton.focus();
  if (!call && focused === stopButton) runButton.focus();
  document.body.dataset.state = call ? "running" : "idle";
  progress.hidden = true;
}

/** The progress messages of the current run (read by the browser tests). */
const progressLog: string[] = [];

function onNotification(n: Notification): void {
  if (n.method === "notifications/progress") {
    const p = n.params as { progress: number; total?: number; message?: string };
    progressLog.push(p.message ?? "");
    progress.hidden = false;
    progress.max = p.total ?? 1;
    progress.value = p.progress;
    status.textContent = p.message ?? "installing dependencies…";
  }
}

async function run(): Promise<void> {
  if (running) return;
  let args: Record<string, unknown>;
  try {
    args = argumentsOf();
  } catch (e) {
    renderError(output, e instanceof Error ? e.message : String(e));
    return;
  }
  const tool = lang === "py" ? "run_py" : "run_js";
  const call = mcp.call<CallToolResult>(
    "tools/call",
    { name: tool, arguments: args, _meta: { progressToken: `ui-${Date.now()}` } },
    onNotification,
  );
  progressLog.length = 0;
  setRunning(call);
  status.textContent = "running…";
  const started = performance.now();
  try {
    const res = await call.result;
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = renderResult(output, mcp, res);
    showHistory(addHistory(lang, args, res, null, res.structuredContent?.outcome ?? "failed"));
    if (args.session) void sessions.refresh();
    status.textContent = `done in ${Math.round(performance.now() - started)} ms`;
    const capsule = res.structuredContent?.capsule;
    if (capsule) {
      const policy = await capsulePolicy(capsule).catch(() => null);
      if (policy) policyView.textContent = JSON.stringify(policy, null, 2);
    }
  } catch (e) {
    if (e instanceof Cancelled) {
      status.textContent = "stopped";
      renderError(output, "Stopped: the server killed the run.", "killed");
      showHistory(addHistory(lang, args, null, "stopped", "killed"));
    } else {
      const message = e instanceof Error ? e.message : String(e);
      status.textContent = "";
      renderError(output, message);
      showHistory(addHistory(lang, args, null, message, "failed"));
    }
  } finally {
    setRunning(null);
    void showServerHistory();
  }
}

function sessionAction(action: () => Promise<void>): void {
  action().catch((e: unknown) => (status.textContent = e instanceof Error ? e.message : String(e)));
}
$<HTMLButtonElement>("new-session").addEventListener("click", () => sessionAction(() => sessions.create()));
$<HTMLButtonElement>("close-session").addEventListener("click", () => sessionAction(() => sessions.close()));
void sessions.refresh();

runButton.addEventListener("click", () => void run());
stopButton.addEventListener("click", () => running?.cancel());
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    void run();
  } else if (e.key === "Escape" && running) {
    e.preventDefault();
    running.cancel();
  }
});

// Bearer token: kept for this tab only (sessionStorage), sent as Authorization on every request.
const tokenInput = $<HTMLInputElement>("token");
tokenInput.value = storedToken();
$<HTMLFormElement>("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  storeToken(tokenInput.value.trim());
  mcp.reset();
  void loadServer();
});

/** "none", or the hosts runs may reach and what is refused anyway. */
function networkText(n: { allowedDomains?: string[]; deniedDomains?: string[]; denyIpLiterals?: boolean; blockPrivateRanges?: boolean }): string {
  if (!n.allowedDomains?.length) return "none";
  const refused = [
    n.deniedDomains?.length ? `not ${n.deniedDomains.join(", ")}` : "",
    n.denyIpLiterals ? "no IP literals" : "",
    n.blockPrivateRanges ? "no private ranges" : "",
  ].filter((x) => x);
  return `${n.allowedDomains.join(", ")}${refused.length ? ` (${refused.join("; ")})` : ""}`;
}

/** The server's policy (GET /policy): its limits and network rules, shown before running. */
async function loadPolicy(): Promise<void> {
  const r = await api("/policy");
  if (!r.ok) throw new Error(`GET /policy: HTTP ${r.status}`);
  const { policy } = (await r.json()) as {
    policy: { limits: Record<string, number>; network: Parameters<typeof networkText>[0]; mcps?: string[] };
  };
  const l = policy.limits;
  serverLimits.textContent =
    `timeoutMs ${l.timeoutMs}, memMb ${l.memMb}, stdoutBytes ${l.stdoutBytes}; network: ${networkText(policy.network)}` +
    (policy.mcps?.length ? `; upstream tools: ${policy.mcps.join(", ")}` : "");
  for (const k of ["timeoutMs", "memMb", "stdoutBytes"]) {
    const input = $<HTMLInputElement>(`limit-${k}`);
    const v = l[k];
    if (v === undefined) continue;
    input.max = String(v);
    input.placeholder = String(v);
  }
  const noNetwork = $<HTMLInputElement>("no-network");
  noNetwork.disabled = !policy.network.allowedDomains?.length;
  noNetwork.title = noNetwork.disabled ? "this server lets runs reach no host already" : "";
  // In the collapsed section's title too: seen before running.
  $("policy-brief").textContent =
    ` — ${l.timeoutMs} ms, ${l.memMb} MB, ${l.stdoutBytes} bytes of output, network: ${policy.network.allowedDomains?.length ? "some hosts" : "none"}`;
}

/** Connects: the tools (whether the server has upstreams), its policy, upstreams, history. */
async function loadServer(): Promise<void> {
  try {
    const { tools } = await mcp.request<{ tools: { name: string }[] }>("tools/list");
    await loadPolicy().catch((e: unknown) => (serverLimits.textContent = String(e)));
    $("connection").textContent = "connected";
    void showServerHistory();
    const configured = tools.some((t) => t.name === "search_tools");
    await renderUpstreams($("upstreams"), configured).catch((e: unknown) => ($("upstreams").textContent = String(e)));
  } catch (e) {
    $("connection").textContent = e instanceof Error ? e.message : String(e);
    $<HTMLDetailsElement>("auth").open = true;
  }
}

void loadServer();
editor.focus();
// For the browser tests: the client, to look at its state.
(window as unknown as { onemcp: unknown }).onemcp = { mcp, editor, progressLog };
