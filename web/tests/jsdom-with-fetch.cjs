// jsdom, with Node's fetch: the component tests talk to a real HTTP server on 127.0.0.1
// (tests/server.ts), and jsdom has no fetch of its own. fetch checks that bodies, streams
// and abort signals come from its own realm, so those classes come from Node as well.
const { TestEnvironment } = require("jest-environment-jsdom");

const FROM_NODE = [
  "fetch",
  "Headers",
  "Request",
  "Response",
  "ReadableStream",
  "WritableStream",
  "TransformStream",
  "TextDecoder",
  "TextEncoder",
  "AbortController",
  "AbortSignal",
];

class JsdomWithFetch extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of FROM_NODE) this.global[name] = globalThis[name];
  }
}

module.exports = JsdomWithFetch;
