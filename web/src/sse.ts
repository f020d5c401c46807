/**
 * Server-Sent Events from a fetch() body.
 *
 * EventSource cannot POST a JSON body or send an Authorization header, so the chat stream is
 * read with fetch() and parsed here, following the WHATWG event-stream rules for what the
 * chat API uses: `data:` fields (several in one event are joined by "\n"), comments, and any
 * of CRLF, LF or CR as line ends, even when a read splits a line, a CRLF pair or a UTF-8
 * character in two.
 */

const LINE_END = /\r\n|\r|\n/g;

/** Turns text, pushed in arbitrary pieces, into the data of each complete event. */
export class SSEParser {
  private buffer = "";
  private data: string[] = [];

  /** The data of every event that `text` completes, in order. */
  push(text: string): string[] {
    this.buffer += text;
    const events: string[] = [];
    let start = 0;
    LINE_END.lastIndex = 0;
    for (let match = LINE_END.exec(this.buffer); match; match = LINE_END.exec(this.buffer)) {
      // A CR at the very end may be the first half of a CRLF that the next read completes.
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const event = this.line(this.buffer.slice(start, match.index));
      if (event !== undefined) events.push(event);
      start = match.index + match[0].length;
    }
    this.buffer = this.buffer.slice(start);
    return events;
  }

  /** The data of the last event when the stream ends; an event without its blank line is
   * incomplete and, as the standard says, dropped. */
  end(): string[] {
    const events = this.buffer.endsWith("\r") ? this.push("\n") : [];
    this.buffer = "";
    this.data = [];
    return events;
  }

  private line(line: string): string | undefined {
    if (line === "") {
      if (this.data.length === 0) return undefined;
      const event = this.data.join("\n");
      this.data = [];
      return event;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== "data") return undefined;
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.data.push(value);
    return undefined;
  }
}

/** Yields the data of each event in `body` as it arrives. */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new SSEParser();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        yield* parser.push(decoder.decode());
        yield* parser.end();
        return;
      }
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
  } finally {
    // A consumer that stops early (at [DONE], on an error or an abort) closes the connection.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
