// Sessions (session_create / session_close): runs against a session share its interpreters and
// its /work workspace, like the cells of a notebook. The handles this tab made are kept in its
// sessionStorage; the workspace's files are listed (POST /workspace/list) and downloaded
// (POST /workspace/read) with the page's credentials, the handle in the body, never in a URL.
import { api, McpClient } from "./mcp";
import { el, saveBlob, type CallToolResult } from "./output";

const KEY = "1mcp.sessions";

interface Created {
  session: string;
  expiresAt: string;
}

interface WorkspaceFile {
  path: string;
  size: number;
  dir: boolean;
}

async function workspace(what: "list" | "read", body: Record<string, string>): Promise<Response> {
  const r = await api(`/workspace/${what}`, {
    method: "POST",
    // The header lets a balancer route it to the session's replica (as MCP calls do).
    headers: { "Content-Type": "application/json", "Mcp-Param-Session": body.session ?? "" },
    body: JSON.stringify(body),
  });
  if (!r.ok) {
    const why = ((await r.json().catch(() => ({}))) as { error?: string }).error;
    throw new WorkspaceError(`${what === "list" ? "listing" : "reading"} the workspace: ${why ?? `HTTP ${r.status}`}`, r.status);
  }
  return r;
}

class WorkspaceError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export class Sessions {
  private handles: string[];

  constructor(
    private readonly mcp: McpClient,
    private readonly select: HTMLSelectElement,
    private readonly files: HTMLElement,
  ) {
    this.handles = JSON.parse(sessionStorage.getItem(KEY) ?? "[]") as string[];
    this.render();
    select.addEventListener("change", () => void this.refresh());
  }

  /** The selected session's handle, or undefined for a fresh sandbox. */
  get current(): string | undefined {
    return this.select.value || undefined;
  }

  set current(handle: string | undefined) {
    this.select.value = handle && this.handles.includes(handle) ? handle : "";
  }

  private save(): void {
    sessionStorage.setItem(KEY, JSON.stringify(this.handles));
  }

  private render(): void {
    const selected = this.select.value;
    this.select.replaceChildren(
      el("option", { value: "" }, "a fresh sandbox"),
      ...this.handles.map((h) => el("option", { value: h }, `session ${h.slice(0, 12)}…`)),
    );
    this.current = selected;
  }

  private async tool(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    const r = await this.mcp.request<CallToolResult>("tools/call", { name, arguments: args });
    if (r.isError) throw new Error(r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n"));
    return r;
  }

  async create(): Promise<void> {
    const r = await this.tool("session_create", {});
    const s = r.structuredContent as unknown as Created;
    this.handles.push(s.session);
    this.save();
    this.render();
    this.current = s.session;
    await this.refresh();
  }

  async close(): Promise<void> {
    const h = this.current;
    if (!h) return;
    try {
      await this.tool("session_close", { session: h });
    } finally {
      // Gone either way: closed now, or already ended (expired) on the server.
      this.handles = this.handles.filter((x) => x !== h);
      this.save();
      this.render();
      await this.refresh();
    }
  }

  /** Lists the selected session's workspace; each file downloads. */
  async refresh(): Promise<void> {
    const h = this.current;
    if (!h) {
      this.files.replaceChildren(el("p", { class: "note" }, "Runs start from nothing. Create a session to keep state and files between runs."));
      return;
    }
    const title = el("p", {}, "Workspace ", el("code", {}, "/work"), " of session ", el("code", {}, h.slice(0, 12) + "…"));
    try {
      const r = await workspace("list", { session: h });
      const { files, truncated } = (await r.json()) as { files: WorkspaceFile[]; truncated: boolean };
      const list = el("ul", { class: "workspace-files" });
      for (const f of files) {
        if (f.dir) {
          list.append(el("li", {}, el("code", {}, `${f.path}/`), " (directory)"));
          continue;
        }
        const b = el("button", { type: "button", class: "link", "data-path": f.path }, f.path);
        b.title = `download /work/${f.path}`;
        b.addEventListener("click", () => {
          workspace("read", { session: h, path: f.path })
            .then((r) => r.blob())
            .then((blob) => saveBlob(blob, f.path.split("/").pop() ?? "file"))
            .catch((e: unknown) => b.after(el("span", { class: "error-text" }, ` ${e instanceof Error ? e.message : String(e)}`)));
        });
        list.append(el("li", {}, b, ` ${f.size} bytes`));
      }
      if (truncated) list.append(el("li", { class: "note" }, "… more files than are listed"));
      this.files.replaceChildren(title, files.length ? list : el("p", { class: "note" }, "(empty)"));
    } catch (e) {
      if (e instanceof WorkspaceError && e.status === 404) {
        // The server no longer has it (closed elsewhere, or expired): runs go to a fresh sandbox.
        this.handles = this.handles.filter((x) => x !== h);
        this.save();
        this.render();
        this.files.replaceChildren(el("p", { class: "error-text" }, `Session ${h.slice(0, 12)}… has ended (closed or expired); runs start from nothing again.`));
        return;
      }
      this.files.replaceChildren(title, el("p", { class: "error-text" }, e instanceof Error ? e.message : String(e)));
    }
  }
}
