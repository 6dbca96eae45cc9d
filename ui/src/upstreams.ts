// The upstream MCP servers of the config: their state (GET /mcps), their tools with schemas
// (GET /mcps/:name/tools), a form made from a tool's input schema that calls it through
// POST /mcps-rpc, and the TypeScript declarations runs see (GET /mcps/types.d.ts).
import { api } from "./mcp";
import { el } from "./output";

interface Upstream {
  name: string;
  transport: string;
  status: string;
  tools: number;
  restarts: number;
  error?: string;
  protocolVersion?: string;
  serverInfo?: { name?: string; version?: string };
}

type Schema = {
  type?: string | string[];
  description?: string;
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
};

interface Tool {
  name: string;
  description?: string;
  inputSchema?: Schema;
  outputSchema?: Schema;
}

const json = (v: unknown) => JSON.stringify(v, null, 2);

/** One input per property of the schema; returns the form and a function reading its value. */
export function schemaForm(schema: Schema | undefined): { fields: HTMLElement; read: () => Record<string, unknown> } {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const readers: (() => [string, unknown] | null)[] = [];
  const fields = el("div", { class: "grid" });
  for (const [name, p] of Object.entries(props)) {
    const type = Array.isArray(p.type) ? p.type.find((t) => t !== "null") : p.type;
    const label = el("label", {}, `${name}${required.has(name) ? " *" : ""}${type ? ` (${type})` : ""}`);
    if (p.description) label.title = p.description;
    let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    if (p.enum) {
      input = el("select", {}, ...(required.has(name) ? [] : [el("option", { value: "" }, "")]));
      for (const v of p.enum) input.append(el("option", { value: JSON.stringify(v) }, String(v)));
    } else if (type === "boolean") {
      input = el("input", { type: "checkbox" });
    } else if (type === "number" || type === "integer") {
      input = el("input", { type: "number", step: type === "integer" ? "1" : "any" });
    } else if (type === "string") {
      input = el("input", { type: "text", spellcheck: "false" });
    } else {
      input = el("textarea", { rows: "3", spellcheck: "false", placeholder: "JSON" });
    }
    input.name = name;
    input.required = required.has(name) && type !== "boolean";
    if (p.default !== undefined && !(input instanceof HTMLSelectElement)) {
      if (input instanceof HTMLInputElement && input.type === "checkbox") input.checked = p.default === true;
      else input.value = typeof p.default === "string" ? p.default : JSON.stringify(p.default);
    }
    label.append(input);
    // Shown, not only a tooltip: a keyboard or touch user reads it too.
    if (p.description) label.append(el("span", { class: "hint" }, p.description));
    fields.append(label);
    readers.push(() => {
      if (input instanceof HTMLInputElement && input.type === "checkbox") return input.checked || required.has(name) ? [name, input.checked] : null;
      const v = input.value;
      if (v === "") return null;
      if (input instanceof HTMLSelectElement) return [name, JSON.parse(v)];
      if (type === "number" || type === "integer") return [name, Number(v)];
      if (type === "string") return [name, v];
      try {
        return [name, JSON.parse(v)];
      } catch {
        throw new Error(`${name}: not valid JSON`);
      }
    });
  }
  if (!Object.keys(props).length) fields.append(el("p", { class: "note" }, "This tool takes no arguments."));
  return { fields, read: () => Object.fromEntries(readers.map((r) => r()).filter((e): e is [string, unknown] => e !== null)) };
}

const firstSentence = (text: string) => /^[^\n.]*\.?/.exec(text)?.[0] ?? "";

function toolView(server: string, tool: Tool): HTMLElement {
  const { fields, read } = schemaForm(tool.inputSchema);
  const result = el("pre", { class: "rpc-result", hidden: "" });
  const call = el("button", { type: "submit", class: "primary" }, "Call");
  const form = el("form", { class: "tool-form" }, fields, el("div", { class: "toolbar" }, call));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void (async () => {
      call.disabled = true;
      result.hidden = false;
      result.className = "rpc-result";
      result.textContent = "calling…";
      try {
        const r = await api("/mcps-rpc", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ mcp: server, tool: tool.name, params: read() }),
        });
        const body = (await r.json()) as { error?: string; isError?: boolean; content?: { type: string; text?: string }[] };
        const failed = !r.ok || body.isError === true;
        result.className = `rpc-result ${failed ? "failed" : "succeeded"}`;
        const texts = (body.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
        result.textContent = r.ok ? `${texts.join("\n")}\n\n${json(body)}` : `HTTP ${r.status}: ${body.error ?? ""}`;
      } catch (err) {
        result.className = "rpc-result failed";
        result.textContent = err instanceof Error ? err.message : String(err);
      } finally {
        call.disabled = false;
      }
    })();
  });
  const schemas = el("details", {}, el("summary", {}, "schemas"), el("h3", {}, "input"), el("pre", {}, json(tool.inputSchema ?? {})));
  if (tool.outputSchema) schemas.append(el("h3", {}, "output"), el("pre", {}, json(tool.outputSchema)));
  return el(
    "details",
    { class: "tool", "data-tool": `${server}/${tool.name}` },
    el("summary", {}, el("code", {}, tool.name), tool.description ? ` — ${firstSentence(tool.description)}` : ""),
    ...(tool.description ? [el("p", { class: "note" }, tool.description)] : []),
    schemas,
    form,
    result,
  );
}

async function loadTools(server: string, into: HTMLElement): Promise<void> {
  into.replaceChildren(el("p", { class: "note" }, "loading…"));
  const r = await api(`/mcps/${encodeURIComponent(server)}/tools`);
  const body = (await r.json()) as { tools?: Tool[]; error?: string };
  if (!r.ok) {
    into.replaceChildren(el("p", { class: "note" }, `HTTP ${r.status}: ${body.error ?? ""}`));
    return;
  }
  into.replaceChildren(...(body.tools ?? []).map((t) => toolView(server, t)));
}

/**
 * Fills `root` with the upstream servers; says so when none is configured (`configured`: the
 * server lists search_tools, as it does exactly when it has upstreams; else /mcps would be a 404).
 */
export async function renderUpstreams(root: HTMLElement, configured: boolean): Promise<void> {
  if (!configured) {
    root.replaceChildren(el("p", { class: "note" }, "No upstream MCP servers are configured (the config's mcps)."));
    return;
  }
  const r = await api("/mcps");
  if (!r.ok) {
    root.replaceChildren(el("p", { class: "note" }, `GET /mcps: HTTP ${r.status}`));
    return;
  }
  const { mcps } = (await r.json()) as { mcps: Upstream[] };
  const items = mcps.map((m) => {
    const tools = el("div", { class: "tools" });
    const item = el(
      "details",
      { class: "upstream", "data-upstream": m.name },
      el(
        "summary",
        {},
        el("strong", {}, m.name),
        " ",
        el("span", { class: `badge ${m.status === "ready" ? "good" : m.status === "connecting" ? "warn" : "bad"}`, "data-status": m.status }, m.status),
        ` ${m.transport} · ${m.tools} tools · ${m.restarts} restarts`,
        m.serverInfo?.name ? ` · ${m.serverInfo.name} ${m.serverInfo.version ?? ""}` : "",
      ),
      ...(m.error ? [el("p", { class: "error-text" }, `last error: ${m.error}`)] : []),
      tools,
    );
    item.addEventListener("toggle", () => {
      if (item.open && !tools.childElementCount) void loadTools(m.name, tools);
    });
    return item;
  });
  const types = el("pre", { class: "types" });
  const decl = el("details", { class: "types-panel" }, el("summary", {}, "TypeScript declarations runs see (/mcps/types.d.ts)"), types);
  decl.addEventListener("toggle", () => {
    if (!decl.open || types.textContent) return;
    void api("/mcps/types.d.ts")
      .then((t) => t.text())
      .then((t) => (types.textContent = t));
  });
  root.replaceChildren(...items, decl);
}
