// Runs made from this page, newest first, kept in localStorage (code, arguments, outcome and the
// beginning of the output), and the recent runs the server keeps for the caller (GET /runs), each
// one loadable and runnable again.
import type { Language } from "./editor";
import { api } from "./mcp";
import { el, type CallToolResult } from "./output";

export interface HistoryEntry {
  at: number;
  lang: Language;
  args: Record<string, unknown>; // the tool's arguments, code included
  outcome: string;
  durationMs?: number;
  output: string;
  note?: string; // what of the run was not kept
}

/** A run as GET /runs lists it. */
interface ServerRun {
  at: number;
  tool: string;
  arguments: Record<string, unknown>;
  envNames?: string[];
  inSession?: boolean;
  argumentsLeftOut?: boolean;
  outcome?: string;
  durationMs?: number;
  truncated?: boolean;
  outputCut?: boolean;
  stdout?: string;
  stderr?: string;
  value?: string;
}

/** The caller's recent runs the server keeps (kept: false when it keeps none for this caller). */
export async function loadServerRuns(): Promise<{ kept: boolean; entries: HistoryEntry[] }> {
  const r = await api("/runs");
  if (!r.ok) throw new Error(`GET /runs: HTTP ${r.status}`);
  const { kept, runs } = (await r.json()) as { kept: boolean; runs: ServerRun[] };
  const entries = runs.map((run): HistoryEntry => {
    const notes: string[] = [];
    if (run.envNames?.length) notes.push(`env values are not kept (${run.envNames.join(", ")})`);
    if (run.inSession) notes.push("it ran in a session; runs again in a fresh sandbox");
    if (run.argumentsLeftOut) notes.push("its code or stdin was too long to keep");
    if (run.outputCut || run.truncated) notes.push("output truncated");
    const output = [run.value !== undefined ? `[value] ${run.value}` : "", run.stdout ?? "", run.stderr ? `[stderr]\n${run.stderr}` : ""]
      .filter((p) => p)
      .join("\n");
    const entry: HistoryEntry = { at: run.at, lang: run.tool === "run_py" ? "py" : "js", args: run.arguments, outcome: run.outcome ?? "failed", output };
    if (run.durationMs !== undefined) entry.durationMs = run.durationMs;
    if (notes.length) entry.note = notes.join("; ");
    return entry;
  });
  return { kept, entries };
}

const KEY = "1mcp.history";
const MAX_ENTRIES = 50;
const MAX_OUTPUT = 2000;
const MAX_CODE = 64 * 1024;

export function loadHistory(): HistoryEntry[] {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(v) ? (v as HistoryEntry[]) : [];
  } catch {
    return [];
  }
}

function save(entries: HistoryEntry[]): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries));
  } catch {
    // Storage full or disabled: drop the oldest half and try once more, else keep nothing.
    try {
      localStorage.setItem(KEY, JSON.stringify(entries.slice(0, entries.length >> 1)));
    } catch {
      /* history is a convenience */
    }
  }
}

function outputOf(res: CallToolResult | null, error: string | null): string {
  const s = res?.structuredContent;
  const parts = s
    ? [s.value !== undefined ? `[value] ${s.value}` : "", s.stdout, s.stderr ? `[stderr]\n${s.stderr}` : ""]
    : [error ?? res?.content.map((c) => (c.type === "text" ? c.text : "")).join("\n") ?? ""];
  const text = parts.filter((p) => p).join("\n");
  return text.length > MAX_OUTPUT ? `${text.slice(0, MAX_OUTPUT)}…` : text;
}

export function addHistory(
  lang: Language,
  args: Record<string, unknown>,
  res: CallToolResult | null,
  error: string | null,
  outcome: string,
): HistoryEntry[] {
  if (typeof args.code === "string" && args.code.length > MAX_CODE) return loadHistory();
  const entry: HistoryEntry = {
    at: Date.now(),
    lang,
    args,
    outcome,
    output: outputOf(res, error),
  };
  if (res?.structuredContent) entry.durationMs = res.structuredContent.durationMs;
  const entries = [entry, ...loadHistory()].slice(0, MAX_ENTRIES);
  save(entries);
  return entries;
}

export function clearHistory(): void {
  localStorage.removeItem(KEY);
}

export function renderHistory(
  list: HTMLElement,
  entries: HistoryEntry[],
  onLoad: (e: HistoryEntry) => void,
  onRerun: (e: HistoryEntry) => void,
): void {
  if (!entries.length) {
    list.replaceChildren(el("p", { class: "note" }, "No runs yet."));
    return;
  }
  list.replaceChildren(
    ...entries.map((e) => {
      const code = typeof e.args.code === "string" ? e.args.code : "";
      const firstLine = code.split("\n").find((l) => l.trim() && !/^\s*(#|\/\/)/.test(l)) ?? "";
      const load = el("button", { type: "button" }, "Load");
      load.addEventListener("click", () => onLoad(e));
      const rerun = el("button", { type: "button" }, "Run again");
      rerun.addEventListener("click", () => onRerun(e));
      load.disabled = rerun.disabled = typeof e.args.code !== "string";
      const ok = e.outcome === "ok";
      return el(
        "details",
        { class: "entry" },
        el(
          "summary",
          {},
          el("span", { class: `badge ${ok ? "good" : "bad"}`, "data-outcome": e.outcome }, e.outcome),
          ` ${e.lang === "py" ? "Python" : "JavaScript"} · ${new Date(e.at).toLocaleTimeString()}`,
          e.durationMs !== undefined ? ` · ${Math.round(e.durationMs)} ms` : "",
          el("code", {}, ` ${firstLine.slice(0, 60)}`),
        ),
        el("div", { class: "toolbar" }, load, rerun),
        ...(e.note ? [el("p", { class: "note" }, e.note)] : []),
        el("pre", {}, code),
        el("pre", { class: "history-output" }, e.output || "(no output)"),
      );
    }),
  );
}
