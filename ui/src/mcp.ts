// A minimal MCP client for the page: one legacy HTTP session on /mcp (initialized again by itself
// when the server forgot it), requests answered as JSON or as an SSE stream (progress
// notifications arrive on it), cancellation with notifications/cancelled.

export const PROTOCOL_VERSION = "2025-11-25";
const TOKEN_KEY = "1mcp.token";

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export class McpError extends Error {
  constructor(message: string, readonly status = 0) {
    super(message);
  }
}

/** The call was cancelled: the server answered nothing, as the protocol says. */
export class Cancelled extends Error {
  constructor() {
    super("cancelled");
  }
}

export type Notification = { method: string; params?: Record<string, unknown> };

export interface Call<T> {
  id: number;
  result: Promise<T>;
  cancel(reason?: string): void;
}

export function storedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function storeToken(token: string): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Headers for every request of the page: the bearer token when one was given (else the cookie). */
export function authHeaders(): Record<string, string> {
  const t = storedToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

type Message = { id?: number | string; result?: unknown; error?: RpcError } & Partial<Notification>;

async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<Message> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end: number;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = event
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, ""))
        .join("\n");
      if (data) yield JSON.parse(data) as Message;
    }
  }
}

export class McpClient {
  private session: string | null = null;
  private initializing: Promise<void> | null = null;
  private nextId = 1;
  /** How many times the page initialized a session (shown to the user; read by the tests). */
  initializations = 0;

  private async post(body: object, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      Accept: "application/json, text/event-stream",
      ...authHeaders(),
    };
    if (this.session) {
      headers["Mcp-Session-Id"] = this.session;
      headers["MCP-Protocol-Version"] = PROTOCOL_VERSION;
    }
    const r = await fetch("/mcp", {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
    if (r.status === 401 || r.status === 403) {
      const why = r.headers.get("WWW-Authenticate") ?? (await r.text());
      throw new McpError(`not authorized (${r.status}): give a token below, or open this page as /?token=<token>. ${why}`, r.status);
    }
    return r;
  }

  private async initialize(): Promise<void> {
    this.session = null;
    const r = await this.post({
      jsonrpc: "2.0",
      id: this.nextId++,
      method: "initialize",
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "1mcp-playground", version: "1" } },
    });
    const sid = r.headers.get("Mcp-Session-Id");
    const msg = (await r.json()) as Message;
    if (msg.error || !sid) throw new McpError(`initialize failed: ${msg.error?.message ?? r.status}`, r.status);
    this.session = sid;
    this.initializations++;
    await this.post({ jsonrpc: "2.0", method: "notifications/initialized" });
  }

  private ensureSession(): Promise<void> {
    if (this.session) return Promise.resolve();
    this.initializing ??= this.initialize().finally(() => (this.initializing = null));
    return this.initializing;
  }

  /** Forgets the session (the next request initializes a new one). */
  reset(): void {
    this.session = null;
  }

  async notify(method: string, params: object): Promise<void> {
    await this.ensureSession();
    await this.post({ jsonrpc: "2.0", method, params });
  }

  /** Sends a request; notifications that arrive on its stream go to onNotification. */
  call<T>(method: string, params: Record<string, unknown>, onNotification?: (n: Notification) => void): Call<T> {
    const id = this.nextId++;
    const abort = new AbortController();
    let cancelled = false;
    const run = async (retry: boolean): Promise<T> => {
      await this.ensureSession();
      const r = await this.post({ jsonrpc: "2.0", id, method, params }, abort.signal);
      if (r.status === 404 && retry) {
        // The server no longer knows the session (it expired): start a new one, once.
        this.session = null;
        return run(false);
      }
      const type = r.headers.get("Content-Type") ?? "";
      if (type.startsWith("text/event-stream") && r.body) {
        for await (const msg of sseMessages(r.body)) {
          if (msg.id === id) return unwrap<T>(msg);
          if (msg.method && onNotification) onNotification(msg as Notification);
        }
        if (cancelled) throw new Cancelled();
        throw new McpError("the server closed the stream without an answer");
      }
      if (!type.startsWith("application/json")) throw new McpError(`HTTP ${r.status}: ${await r.text()}`, r.status);
      const msg = (await r.json()) as Message;
      if (cancelled && msg.error) throw new Cancelled();
      return unwrap<T>(msg);
    };
    const result = run(true).catch((e: unknown) => {
      if (cancelled && e instanceof DOMException && e.name === "AbortError") throw new Cancelled();
      throw e;
    });
    return {
      id,
      result,
      cancel: (reason = "stopped from the web page") => {
        if (cancelled) return;
        cancelled = true;
        // The server kills the run and ends the stream without an answer.
        this.notify("notifications/cancelled", { requestId: id, reason }).catch(() => abort.abort());
      },
    };
  }

  request<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.call<T>(method, params).result;
  }
}

function unwrap<T>(msg: Message): T {
  if (msg.error) throw new McpError(msg.error.message);
  return msg.result as T;
}

/** GET (or POST) one of the server's other endpoints with the page's credentials. */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { ...authHeaders(), ...(init.headers as Record<string, string> | undefined) };
  return fetch(path, { ...init, headers, credentials: "same-origin" });
}
