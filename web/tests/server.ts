/**
 * A real HTTP server on 127.0.0.1 that speaks the genesis API the way the chat page uses it:
 * `GET /v1/models` and streaming `POST /v1/chat/completions`. Each test scripts the replies
 * (the bytes, the pauses between writes, HTTP errors) and reads back what the page sent.
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Step =
  | { write: string | Uint8Array }
  /** Wait so the next write arrives in a separate read. */
  | { pause: number }
  /** Keep the response open until the client goes away. */
  | { hold: true };

export type ChatScript =
  | { steps: Step[] }
  | {
      status: number;
      body: string;
      contentType?: string;
      statusText?: string;
      headers?: Record<string, string>;
    }
  /** Drop the connection without answering, as a crashed server or a broken network does. */
  | { destroy: true };

export interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

export function chunk(content: string): string {
  return JSON.stringify({
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 0,
    model: "genesis-offline-demo",
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  });
}

export function openAIError(message: string, code = "invalid_value"): string {
  return JSON.stringify({
    error: { message, type: "invalid_request_error", param: null, code },
  });
}

/** A stream of `pieces` as one SSE event each, then `[DONE]`. */
export function replySteps(pieces: string[]): Step[] {
  return [
    ...pieces.flatMap((piece): Step[] => [{ write: `data: ${chunk(piece)}\n\n` }, { pause: 5 }]),
    { write: "data: [DONE]\n\n" },
  ];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What `GET /v1/jobs/{id}` answers, one state per read (the last one stays). */
export interface JobState {
  status: "queued" | "running" | "succeeded" | "failed" | "cancelled";
  attempts?: number;
  reply?: string;
  error?: { message: string; code: string };
}

/** The job body genesis answers, for a state of the script. */
export function jobBody(id: string, state: JobState): string {
  return JSON.stringify({
    id,
    object: "chat.completion.job",
    status: state.status,
    model: "genesis-offline-demo",
    queue: "chat",
    created_at: 1796352148,
    started_at: state.status === "queued" ? null : 1796352149,
    finished_at: null,
    expires_at: null,
    attempts: state.attempts ?? (state.status === "queued" ? 0 : 1),
    max_attempts: 4,
    history: [],
    result:
      state.reply === undefined
        ? null
        : {
            id: "chatcmpl-job",
            object: "chat.completion",
            choices: [{ index: 0, message: { role: "assistant", content: state.reply } }],
          },
    error: state.error ? { ...state.error, type: "server_error", param: null } : null,
  });
}

export class ApiServer {
  url = "";
  models = ["genesis-offline-demo", "second-model"];
  /** When set, every request must carry `Authorization: Bearer <requiredKey>`. */
  requiredKey: string | null = null;
  readonly requests: Recorded[] = [];
  private scripts: ChatScript[] = [];
  /** The states the next job created goes through; or an error for its `POST /v1/jobs`. */
  private jobScript: JobState[] | { status: number; body: string } = [];
  private jobs = new Map<string, JobState[]>();
  private disconnects = 0;
  private disconnectWaiters: (() => void)[] = [];
  private readonly server = createServer((request, response) => {
    void this.handle(request, response);
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Replies to the next chat requests, in order. */
  script(...scripts: ChatScript[]): void {
    this.scripts.push(...scripts);
  }

  /** The next job: `POST` answers the first state, each `GET` the next (the last one stays). */
  scriptJob(states: JobState[] | { status: number; body: string }): void {
    this.jobScript = states;
  }

  jobRequests(): Recorded[] {
    return this.requests.filter((request) => request.path.startsWith("/v1/jobs"));
  }

  chatRequests(): Recorded[] {
    return this.requests.filter((request) => request.path === "/v1/chat/completions");
  }

  /** Resolves once a streaming response was closed by the client before it ended. */
  clientDisconnected(): Promise<void> {
    if (this.disconnects > 0) return Promise.resolve();
    return new Promise((resolve) => this.disconnectWaiters.push(resolve));
  }

  reset(): void {
    this.requests.length = 0;
    this.scripts = [];
    this.disconnects = 0;
    this.disconnectWaiters = [];
    this.requiredKey = null;
    this.jobScript = [];
    this.jobs.clear();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const piece of request) chunks.push(piece as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const path = new URL(request.url ?? "/", this.url).pathname;
    this.requests.push({
      method: request.method ?? "",
      path,
      authorization: request.headers.authorization,
      body: text ? (JSON.parse(text) as unknown) : undefined,
    });
    if (
      this.requiredKey !== null &&
      request.headers.authorization !== `Bearer ${this.requiredKey}`
    ) {
      this.json(response, 401, openAIError("Invalid API key", "invalid_api_key"));
    } else if (request.method === "GET" && path === "/v1/models") {
      const data = this.models.map((id) => ({ id, object: "model", created: 0, owned_by: "test" }));
      this.json(response, 200, JSON.stringify({ object: "list", data }));
    } else if (request.method === "POST" && path === "/v1/chat/completions") {
      await this.chat(response);
    } else if (path.startsWith("/v1/jobs")) {
      this.job(request.method ?? "", path, response);
    } else {
      this.json(
        response,
        404,
        openAIError(`Unknown route: ${request.method} ${path}`, "not_found"),
      );
    }
  }

  private job(method: string, path: string, response: ServerResponse): void {
    if (method === "POST" && path === "/v1/jobs") {
      const script = this.jobScript;
      if (!Array.isArray(script)) {
        this.json(response, script.status, script.body);
        return;
      }
      const id = `job_${this.jobs.size + 1}`;
      const [first = { status: "queued" }, ...rest] = script;
      this.jobs.set(id, rest.length ? rest : [first]);
      response.setHeader("Location", `/v1/jobs/${id}`);
      this.json(response, 202, jobBody(id, first));
      return;
    }
    const id = decodeURIComponent(path.slice("/v1/jobs/".length));
    const states = this.jobs.get(id);
    if (!states) {
      this.json(response, 404, openAIError(`No job ${id}`, "job_not_found"));
    } else if (method === "DELETE") {
      states.splice(0, states.length, { status: "cancelled" });
      this.json(response, 200, jobBody(id, { status: "cancelled" }));
    } else {
      const state = states.length > 1 ? states.shift() : states[0];
      this.json(response, 200, jobBody(id, state ?? { status: "queued" }));
    }
  }

  private json(response: ServerResponse, status: number, body: string): void {
    response.writeHead(status, { "Content-Type": "application/json" }).end(body);
  }

  private async chat(response: ServerResponse): Promise<void> {
    const script = this.scripts.shift();
    if (!script) {
      this.json(response, 500, openAIError("The test scripted no reply", "test_error"));
      return;
    }
    if ("destroy" in script) {
      response.socket?.destroy();
      return;
    }
    if ("status" in script) {
      response.statusMessage = script.statusText ?? "";
      response.writeHead(script.status, {
        "Content-Type": script.contentType ?? "application/json",
        ...script.headers,
      });
      response.end(script.body);
      return;
    }
    let ended = false;
    response.on("close", () => {
      if (ended) return;
      this.disconnects += 1;
      for (const resolve of this.disconnectWaiters.splice(0)) resolve();
    });
    response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    response.flushHeaders();
    for (const step of script.steps) {
      if (response.destroyed) return;
      if ("write" in step) response.write(step.write);
      else if ("pause" in step) await sleep(step.pause);
      else await new Promise((resolve) => response.once("close", resolve));
    }
    ended = true;
    response.end();
  }
}
