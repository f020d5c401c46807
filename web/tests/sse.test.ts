/** @jest-environment node */
import { SSEParser, sseEvents } from "../src/sse";

const encoder = new TextEncoder();

function streamOf(pieces: (string | Uint8Array)[], onCancel?: () => void) {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      for (const piece of pieces) {
        controller.enqueue(typeof piece === "string" ? encoder.encode(piece) : piece);
      }
      if (!onCancel) controller.close();
    },
    cancel() {
      onCancel?.();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const events: string[] = [];
  for await (const data of sseEvents(stream)) events.push(data);
  return events;
}

const STREAM =
  'data: {"a":1}\n\n' +
  ": a comment the server may send to keep the connection alive\n" +
  "event: message\nid: 7\nretry: 1000\n" +
  "data: first line\ndata:second line\n\n" +
  "data: café ☕ 🎉\r\n\r\n" +
  "data: [DONE]\r\r";

const EXPECTED = ['{"a":1}', "first line\nsecond line", "café ☕ 🎉", "[DONE]"];

describe("SSEParser", () => {
  it("returns the data of each complete event", () => {
    const parser = new SSEParser();
    // The last CR may begin a CRLF, so only the end of the stream completes that line.
    expect(parser.push(STREAM)).toEqual(EXPECTED.slice(0, -1));
    expect(parser.end()).toEqual(EXPECTED.slice(-1));
  });

  it("keeps a partial line until the read that completes it", () => {
    const parser = new SSEParser();
    expect(parser.push("data: hel")).toEqual([]);
    expect(parser.push("lo\n")).toEqual([]);
    expect(parser.push("\n")).toEqual(["hello"]);
  });

  it("treats a CRLF split across two reads as one line end", () => {
    const parser = new SSEParser();
    expect(parser.push("data: x\r")).toEqual([]);
    expect(parser.push("\n\r")).toEqual([]);
    expect(parser.push("\ndata: y\n\n")).toEqual(["x", "y"]);
  });

  it("ends a line at a lone CR once the stream ends", () => {
    const parser = new SSEParser();
    expect(parser.push("data: x\n\r")).toEqual([]);
    expect(parser.end()).toEqual(["x"]);
  });

  it("drops an event whose blank line never came", () => {
    const parser = new SSEParser();
    expect(parser.push("data: complete\n\ndata: cut off\n")).toEqual(["complete"]);
    expect(parser.end()).toEqual([]);
  });

  it("reads a field without a colon as an empty value and ignores other fields", () => {
    const parser = new SSEParser();
    expect(parser.push("data\n\nevent: ping\n\nfoo: bar\ndata:  two spaces\n\n")).toEqual([
      "",
      " two spaces",
    ]);
  });
});

describe("sseEvents", () => {
  it("gives the same events however the bytes are split into reads", async () => {
    const bytes = encoder.encode(STREAM);
    // Every split point, multi-byte characters and CRLF pairs included.
    for (let cut = 1; cut < bytes.length; cut++) {
      const events = await collect(streamOf([bytes.slice(0, cut), bytes.slice(cut)]));
      expect(events).toEqual(EXPECTED);
    }
  });

  it("gives the same events when every byte is its own read", async () => {
    const bytes = encoder.encode(STREAM);
    const pieces = Array.from(bytes, (byte) => Uint8Array.of(byte));
    expect(await collect(streamOf(pieces))).toEqual(EXPECTED);
  });

  it("cancels the body when the consumer stops early", async () => {
    let cancelled = false;
    const stream = streamOf(["data: one\n\ndata: two\n\n"], () => {
      cancelled = true;
    });
    for await (const data of sseEvents(stream)) {
      expect(data).toBe("one");
      break;
    }
    expect(cancelled).toBe(true);
  });

  it("passes on a read error", async () => {
    let reads = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        reads += 1;
        if (reads === 1) controller.enqueue(encoder.encode("data: one\n\n"));
        else controller.error(new Error("connection reset"));
      },
    });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const data of sseEvents(stream)) seen.push(data);
      })(),
    ).rejects.toThrow("connection reset");
    expect(seen).toEqual(["one"]);
  });
});
