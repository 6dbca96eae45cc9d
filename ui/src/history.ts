// Runs made from this page, newest first, kept in localStorage (code, arguments, outcome and the
// beginning of the output), each one loadable and runnable again.
import type { Language } from "./editor";
import { el, type CallToolResult } from "./output";

export interface HistoryEntry {
  at: number;
  lang: Language;
  args: Record<string, unknown>; // the tool's arguments, code included
  outcome: string;
  durationMs?: number;
  output: string;
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
        el("pre", {}, code),
        el("pre", { class: "history-output" }, e.output || "(no output)"),
      );
    }),
  );
}
