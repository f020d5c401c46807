/** The genesis (OpenAI-compatible) API, as the chat page uses it. */

import { sseEvents } from "./sse";

export type Role = "system" | "user" | "assistant";

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface Connection {
  /** Origin of the API; "" means the page's own origin, as when genesis serves the page. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` when not empty. */
  apiKey: string;
}

/** An error the server reported in OpenAI's shape, or one the client found in the exchange. */
export class ApiError extends Error {
  override readonly name = "ApiError";

  constructor(
    message: string,
    readonly status: number | null = null,
    readonly code: string | null = null,
    /** Seconds the server asked the client to wait (`Retry-After`), when it said. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/**
 * `Retry-After` in seconds: the header holds either a number of seconds or an HTTP date.
 * `now` is injectable so the date form can be tested.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text));
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

interface OpenAIError {
  error: { message: string; type?: string; code?: string | null };
}

function isOpenAIError(value: unknown): value is OpenAIError {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = value.error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { message?: unknown }).message === "string"
  );
}

function headers(connection: Connection, extra: Record<string, string> = {}): Headers {
  const result = new Headers({ Accept: "application/json", ...extra });
  const key = connection.apiKey.trim();
  if (key) result.set("Authorization", `Bearer ${key}`);
  return result;
}

/** The error of a non-2xx response, with the server's own message when it sent one. */
async function httpError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  try {
    const body: unknown = JSON.parse(text);
    if (isOpenAIError(body)) {
      const code = body.error.code ?? null;
      return new ApiError(body.error.message, response.status, code, retryAfter);
    }
  } catch {
    // Not JSON (a proxy's HTML page, say): fall through to the status line.
  }
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError(
    `The server answered HTTP ${response.status}${reason}`,
    response.status,
    null,
    retryAfter,
  );
}

/** The ids of the models the server answers to. */
export async function listModels(connection: Connection, signal?: AbortSignal): Promise<string[]> {
  const response = await fetch(`${connection.baseUrl}/v1/models`, {
    headers: headers(connection),
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await httpError(response);
  const body = (await response.json()) as { data?: { id?: unknown }[] };
  if (!Array.isArray(body.data)) throw new ApiError("The model list has no `data` array");
  return body.data.map((model) => model.id).filter((id): id is string => typeof id === "string");
}

interface ChunkChoice {
  delta?: { content?: string | null };
}

/**
 * Streams a chat completion: yields each piece of the reply's text as it arrives.
 *
 * Throws ApiError for an HTTP error (with the server's message), for an error event in the
 * stream, and for a stream that ends without `[DONE]` (the reply would be incomplete). An
 * abort through `signal` rejects with the fetch's AbortError.
 */
export async function* streamChat(
  connection: Connection,
  model: string,
  messages: ChatMessage[],
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const response = await fetch(`${connection.baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: headers(connection, {
      "Content-Type": "application/json",
      Accept: "text/event-stream",
    }),
    body: JSON.stringify({ model, messages, stream: true }),
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await httpError(response);
  if (!response.body) throw new ApiError("The server sent no response body", response.status);
  for await (const data of sseEvents(response.body)) {
    if (data === "[DONE]") return;
    let payload: unknown;
    try {
      payload = JSON.parse(data);
    } catch {
      throw new ApiError(`The stream sent an event that is not JSON: ${data.slice(0, 80)}`);
    }
    if (isOpenAIError(payload)) {
      throw new ApiError(payload.error.message, null, payload.error.code ?? null);
    }
    const choices = (payload as { choices?: ChunkChoice[] }).choices ?? [];
    const content = choices[0]?.delta?.content;
    if (content) yield content;
  }
  throw new ApiError("The stream ended before [DONE]: the reply may be incomplete");
}

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** A chat completion queued on `POST /v1/jobs`, as `GET /v1/jobs/{id}` reports it. */
export interface Job {
  id: string;
  status: JobStatus;
  attempts: number;
  /** Unix seconds. */
  created_at: number;
  started_at: number | null;
  result: { choices?: { message?: { content?: string | null } }[] } | null;
  error: { message: string; code?: string | null } | null;
}

export const FINISHED: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

function isJob(value: unknown): value is Job {
  if (typeof value !== "object" || value === null) return false;
  const job = value as Partial<Job>;
  return typeof job.id === "string" && typeof job.status === "string";
}

async function jobRequest(
  connection: Connection,
  path: string,
  init: RequestInit,
  signal?: AbortSignal,
): Promise<Job> {
  const response = await fetch(`${connection.baseUrl}${path}`, {
    ...init,
    headers: headers(connection, init.body ? { "Content-Type": "application/json" } : {}),
    ...(signal ? { signal } : {}),
  });
  if (!response.ok) throw await httpError(response);
  const body: unknown = await response.json();
  if (!isJob(body)) throw new ApiError("The server's answer is not a job", response.status);
  return body;
}

/** Queue a chat completion as a job (`POST /v1/jobs`): the answer is read from the job later. */
export function createJob(
  connection: Connection,
  model: string,
  messages: ChatMessage[],
  signal?: AbortSignal,
): Promise<Job> {
  return jobRequest(
    connection,
    "/v1/jobs",
    { method: "POST", body: JSON.stringify({ model, messages }) },
    signal,
  );
}

export function getJob(connection: Connection, id: string, signal?: AbortSignal): Promise<Job> {
  return jobRequest(connection, `/v1/jobs/${encodeURIComponent(id)}`, { method: "GET" }, signal);
}

export function cancelJob(connection: Connection, id: string): Promise<Job> {
  return jobRequest(connection, `/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
}

const wait = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });

/**
 * Queue a job and follow it: yields the job each time it is read, until it is finished.
 *
 * An abort through `signal` cancels the job on the server (`DELETE`), so a stopped job does not
 * keep a worker busy, then rejects with the abort's reason.
 */
export async function* followJob(
  connection: Connection,
  model: string,
  messages: ChatMessage[],
  signal?: AbortSignal,
  pollMs = 1000,
): AsyncGenerator<Job> {
  let job = await createJob(connection, model, messages, signal);
  try {
    yield job;
    while (!FINISHED.has(job.status)) {
      await wait(pollMs, signal);
      job = await getJob(connection, job.id, signal);
      yield job;
    }
  } catch (error) {
    if (signal?.aborted && !FINISHED.has(job.status)) {
      // Best effort: the page has stopped listening whatever the server answers.
      await cancelJob(connection, job.id).catch(() => undefined);
    }
    throw error;
  }
}

/** The reply text of a succeeded job. */
export function jobReply(job: Job): string {
  const content = job.result?.choices?.[0]?.message?.content;
  if (typeof content !== "string") throw new ApiError("The finished job holds no reply");
  return content;
}
