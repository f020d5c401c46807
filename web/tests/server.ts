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

export class ApiServer {
  url = "";
  models = ["genesis-offline-demo", "second-model"];
  /** When set, every request must carry `Authorization: Bearer <requiredKey>`. */
  requiredKey: string | null = null;
  readonly requests: Recorded[] = [];
  private scripts: ChatScript[] = [];
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
    } else {
      this.json(
        response,
        404,
        openAIError(`Unknown route: ${request.method} ${path}`, "not_found"),
      );
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
