/** @jest-environment node */
import {
  ApiError,
  followJob,
  jobReply,
  listModels,
  parseRetryAfter,
  streamChat,
  type Connection,
  type Job,
} from "../src/api";
import { ApiServer, chunk, jobBody, openAIError, replySteps } from "./server";

const server = new ApiServer();
let connection: Connection;

beforeAll(async () => {
  await server.start();
});
afterAll(() => server.stop());
beforeEach(() => {
  server.reset();
  connection = { baseUrl: server.url, apiKey: "" };
});

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const pieces: string[] = [];
  for await (const piece of stream) pieces.push(piece);
  return pieces;
}

const HELLO = [{ role: "user" as const, content: "hello" }];

describe("listModels", () => {
  it("returns the model ids and sends no Authorization header without a key", async () => {
    expect(await listModels(connection)).toEqual(["genesis-offline-demo", "second-model"]);
    expect(server.requests[0]?.authorization).toBeUndefined();
  });

  it("sends the API key as a Bearer token", async () => {
    server.requiredKey = "sk-test-123";
    await listModels({ ...connection, apiKey: " sk-test-123 " });
    expect(server.requests[0]?.authorization).toBe("Bearer sk-test-123");
  });

  it("raises the server's own error message", async () => {
    server.requiredKey = "sk-test-123";
    const failure = listModels({ ...connection, apiKey: "wrong" });
    await expect(failure).rejects.toThrow(new ApiError("Invalid API key"));
    await expect(failure).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
  });
});

describe("streamChat", () => {
  it("yields the reply piece by piece and posts an OpenAI streaming request", async () => {
    server.script({ steps: replySteps(["Hel", "lo", " wörld"]) });
    const pieces = await collect(streamChat(connection, "second-model", HELLO));
    expect(pieces).toEqual(["Hel", "lo", " wörld"]);
    expect(server.chatRequests()[0]?.body).toEqual({
      model: "second-model",
      messages: HELLO,
      stream: true,
    });
  });

  it("reads events split anywhere across network writes", async () => {
    const bytes = Buffer.from(
      `data: ${chunk("split")}\r\n\r\ndata: ${chunk(" 🎉")}\n\ndata: [DONE]\n\n`,
    );
    // Cut inside "data:", between \r and \n, and inside the emoji's four bytes.
    const cuts = [
      0,
      3,
      bytes.indexOf("\r") + 1,
      bytes.indexOf(Buffer.from("🎉")) + 2,
      bytes.length,
    ];
    server.script({
      steps: cuts
        .slice(1)
        .flatMap((end, i) => [{ write: bytes.subarray(cuts[i], end) }, { pause: 15 }]),
    });
    const pieces = await collect(streamChat(connection, "genesis-offline-demo", HELLO));
    expect(pieces).toEqual(["split", " 🎉"]);
  });

  it("raises the server's message for an HTTP error", async () => {
    server.script({
      status: 413,
      body: openAIError("Request body is larger than the limit", "request_too_large"),
    });
    const failure = collect(streamChat(connection, "genesis-offline-demo", HELLO));
    await expect(failure).rejects.toThrow("Request body is larger than the limit");
    await expect(failure).rejects.toMatchObject({ status: 413, code: "request_too_large" });
  });

  it("names the status when an HTTP error has no OpenAI body", async () => {
    server.script({
      status: 502,
      statusText: "Bad Gateway",
      body: "<html>proxy error</html>",
      contentType: "text/html",
    });
    await expect(collect(streamChat(connection, "genesis-offline-demo", HELLO))).rejects.toThrow(
      "The server answered HTTP 502 Bad Gateway",
    );
  });

  it("raises an error event that arrives mid-stream, after the pieces before it", async () => {
    server.script({
      steps: [
        { write: `data: ${chunk("partial")}\n\n` },
        { pause: 10 },
        { write: `data: ${openAIError("Upstream timed out", "upstream_timeout")}\n\n` },
        { write: "data: [DONE]\n\n" },
      ],
    });
    const seen: string[] = [];
    const failure = (async () => {
      for await (const piece of streamChat(connection, "genesis-offline-demo", HELLO)) {
        seen.push(piece);
      }
    })();
    await expect(failure).rejects.toMatchObject({
      message: "Upstream timed out",
      code: "upstream_timeout",
    });
    expect(seen).toEqual(["partial"]);
  });

  it("raises when the stream ends without [DONE]", async () => {
    server.script({ steps: [{ write: `data: ${chunk("cut")}\n\n` }] });
    await expect(collect(streamChat(connection, "genesis-offline-demo", HELLO))).rejects.toThrow(
      "The stream ended before [DONE]",
    );
  });

  it("raises on an event that is not JSON", async () => {
    server.script({ steps: [{ write: "data: <oops>\n\n" }] });
    await expect(collect(streamChat(connection, "genesis-offline-demo", HELLO))).rejects.toThrow(
      "not JSON: <oops>",
    );
  });

  it("stops on abort and closes the connection", async () => {
    server.script({ steps: [{ write: `data: ${chunk("first")}\n\n` }, { hold: true }] });
    const controller = new AbortController();
    const seen: string[] = [];
    const failure = (async () => {
      for await (const piece of streamChat(
        connection,
        "genesis-offline-demo",
        HELLO,
        controller.signal,
      )) {
        seen.push(piece);
        controller.abort();
      }
    })();
    await expect(failure).rejects.toMatchObject({ name: "AbortError" });
    expect(seen).toEqual(["first"]);
    await server.clientDisconnected();
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2026-01-02T03:04:05Z");

  it.each([
    [null, null],
    ["30", 30],
    [" 2 ", 2],
    ["1.2", 2],
    ["Fri, 02 Jan 2026 03:04:15 GMT", 10],
    ["Fri, 02 Jan 2026 03:00:00 GMT", 0],
    ["soon", null],
  ])("reads %p as %p seconds", (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });

  it("comes with the error of a 429", async () => {
    server.script({
      status: 429,
      body: openAIError("Slow down", "rate_limit_exceeded"),
      headers: { "Retry-After": "12" },
    });
    await expect(collect(streamChat(connection, "genesis-offline-demo", HELLO))).rejects.toEqual(
      new ApiError("Slow down", 429, "rate_limit_exceeded", 12),
    );
  });

  it("is read from a 429 that is not in OpenAI's shape", async () => {
    server.script({
      status: 429,
      body: "<html>busy</html>",
      contentType: "text/html",
      statusText: "Too Many Requests",
      headers: { "Retry-After": "3" },
    });
    await expect(
      collect(streamChat(connection, "genesis-offline-demo", HELLO)),
    ).rejects.toMatchObject({
      message: "The server answered HTTP 429 Too Many Requests",
      status: 429,
      retryAfter: 3,
    });
  });
});

describe("jobs", () => {
  it("follows a job until it is finished and reads its reply", async () => {
    server.scriptJob([{ status: "queued" }, { status: "succeeded", reply: "done" }]);
    const seen: Job[] = [];
    for await (const job of followJob(connection, "genesis-offline-demo", HELLO, undefined, 5)) {
      seen.push(job);
    }
    expect(seen.map((job) => job.status)).toEqual(["queued", "succeeded"]);
    const last = seen.at(-1);
    if (!last) throw new Error("no job was read");
    expect(jobReply(last)).toBe("done");
  });

  it("says so when a succeeded job holds no reply", () => {
    const job = JSON.parse(jobBody("job_1", { status: "succeeded" })) as Job;
    expect(() => jobReply(job)).toThrow("The finished job holds no reply");
  });

  it("cancels the job when aborted before the first read", async () => {
    server.scriptJob([{ status: "queued" }]);
    const controller = new AbortController();
    const follow = followJob(connection, "genesis-offline-demo", HELLO, controller.signal, 5);
    expect((await follow.next()).value).toMatchObject({ status: "queued" });
    controller.abort();
    await expect(follow.next()).rejects.toThrow();
    expect(server.jobRequests().map((request) => request.method)).toEqual(["POST", "DELETE"]);
  });
});
