// Renders a run_js / run_py result: outcome, exit code, duration, truncation, value, stdout,
// stderr, /out images and files, the capsule that ran and the policy it ran under.
import { api, McpClient } from "./mcp";

export interface OutFile {
  path: string;
  size: number;
  truncated: boolean;
  mimeType: string;
  uri: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  outcome: string;
  durationMs: number;
  truncated: boolean;
  value?: string;
  capsule?: string;
  files?: OutFile[];
  session?: { interpreter: string; call: number; note?: string };
}

export type Content =
  | { type: "text"; text: string }
  | { type: "image"; data: string; mimeType: string }
  | { type: "resource_link"; uri: string; name?: string; mimeType?: string };

export interface CallToolResult {
  content: Content[];
  structuredContent?: RunResult;
  isError?: boolean;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) if (v !== undefined) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

export function base64Blob(data: string, type: string): Blob {
  const bin = atob(data);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

function block(label: string, text: string, cls: string): HTMLElement {
  return el("section", { class: `stream ${cls}` }, el("h3", {}, label), el("pre", {}, text));
}

/** Saves `blob` as a download named `name`. */
export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function download(mcp: McpClient, file: OutFile): Promise<void> {
  const r = await mcp.request<{ contents: { text?: string; blob?: string; mimeType?: string }[] }>("resources/read", { uri: file.uri });
  const c = r.contents[0];
  const blob = c?.blob !== undefined ? base64Blob(c.blob, file.mimeType) : new Blob([c?.text ?? ""], { type: file.mimeType });
  saveBlob(blob, file.path.split("/").pop() ?? "file");
}

/**
 * Opens a capsule's manifest. A navigation would carry the cookie but never the bearer token, so
 * the page fetches it with its credentials and shows the answer from a blob in a new tab (its
 * type set here: shown as text, never run); a blocked pop-up downloads it instead.
 */
async function openCapsule(href: string, id: string): Promise<void> {
  const r = await api(href);
  if (!r.ok) throw new Error(`${href}: HTTP ${r.status}`);
  const blob = new Blob([await r.arrayBuffer()], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  if (!window.open(url, "_blank")) saveBlob(blob, `capsule-${id.slice(0, 12)}.json`);
}

/** Shows a call that has no run result: it failed (or, with outcome "killed", was stopped). */
export function renderError(out: HTMLElement, message: string, outcome = "failed"): void {
  out.replaceChildren(
    el("p", { class: "summary" }, el("span", { class: "badge bad", "data-outcome": outcome }, outcome)),
    block(outcome === "failed" ? "error" : "why", message, "stderr"),
  );
}

/** Shows a result; returns the object URLs it made (revoked when the next result replaces it). */
export function renderResult(out: HTMLElement, mcp: McpClient, res: CallToolResult): string[] {
  const urls: string[] = [];
  const s = res.structuredContent;
  const parts: HTMLElement[] = [];
  if (!s) {
    // Not a run's result (e.g. the arguments were refused): the text says why.
    const text = res.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");
    renderError(out, text);
    return urls;
  }
  const ok = s.outcome === "ok" && !res.isError;
  const summary = el(
    "p",
    { class: "summary" },
    el("span", { class: `badge ${ok ? "good" : "bad"}`, "data-outcome": s.outcome }, s.outcome),
    el("span", {}, `exit code ${s.exitCode}`),
    el("span", {}, `${Math.round(s.durationMs * 10) / 10} ms`),
  );
  if (s.truncated) summary.append(el("span", { class: "badge warn" }, "output truncated"));
  if (s.session) summary.append(el("span", {}, `session: ${s.session.interpreter} interpreter, call ${s.session.call}`));
  if (s.capsule) {
    const id = s.capsule;
    const href = `/capsules/${id}/manifest.json`;
    const link = el("a", { href, target: "_blank", rel: "noopener", class: "capsule", title: `capsule ${id}` }, id.slice(0, 12));
    link.addEventListener("click", (e) => {
      e.preventDefault();
      openCapsule(href, id).catch((err: unknown) => link.after(el("span", { class: "error-text" }, ` ${String(err)}`)));
    });
    summary.append(el("span", {}, "capsule ", link));
  }
  parts.push(summary);
  if (s.session?.note) parts.push(el("p", { class: "note" }, s.session.note));
  if (s.value !== undefined) parts.push(block("value", s.value, "value"));
  if (s.stdout) parts.push(block("stdout", s.stdout, "stdout"));
  if (s.stderr) parts.push(block("stderr", s.stderr, "stderr"));
  if (!s.value && !s.stdout && !s.stderr) parts.push(el("p", { class: "note" }, "(no output)"));
  const images = res.content.filter((c): c is Extract<Content, { type: "image" }> => c.type === "image");
  if (images.length) {
    const fig = el("section", { class: "images" }, el("h3", {}, "images from /out"));
    for (const img of images) {
      const url = URL.createObjectURL(base64Blob(img.data, img.mimeType));
      urls.push(url);
      fig.append(el("img", { src: url, alt: `image from /out (${img.mimeType})` }));
    }
    parts.push(fig);
  }
  if (s.files?.length) {
    const list = el("ul", {});
    for (const f of s.files) {
      const b = el("button", { type: "button", class: "link" }, `download ${f.path}`);
      b.addEventListener("click", () => void download(mcp, f).catch((e: unknown) => alert(String(e))));
      list.append(el("li", {}, b, ` ${f.mimeType}, ${f.size} bytes${f.truncated ? " (truncated)" : ""}`));
    }
    parts.push(el("section", { class: "files" }, el("h3", {}, "files in /out"), list));
  }
  out.replaceChildren(...parts);
  return urls;
}

/** The policy a run really had, read from its capsule's manifest. */
export async function capsulePolicy(capsule: string): Promise<unknown> {
  const r = await api(`/capsules/${capsule}/manifest.json`);
  if (!r.ok) return null;
  const m = (await r.json()) as { policy?: unknown };
  return m.policy ?? null;
}
