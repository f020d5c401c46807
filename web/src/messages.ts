/** What the page tells a person when a request fails: what happened and what to do next. */

import { ApiError } from "./api";

function seconds(count: number): string {
  return count === 1 ? "1 second" : `${count} seconds`;
}

/** `hasKey`: whether the failed request carried an API key (a 401 then means a wrong one). */
export function describeError(error: unknown, hasKey: boolean): string {
  if (error instanceof ApiError) {
    if (error.status === 401) {
      return hasKey
        ? `The server refused the API key (HTTP 401: ${error.message}). Enter a valid key under "API key".`
        : `The server needs an API key (HTTP 401: ${error.message}). Enter one under "API key".`;
    }
    if (error.status === 429) {
      const when =
        error.retryAfter === null
          ? "Try again in a moment."
          : `Try again in ${seconds(error.retryAfter)}.`;
      return `Too many requests (HTTP 429: ${error.message}). ${when}`;
    }
    return error.message;
  }
  // fetch's own errors (a refused connection, a dropped stream) may come from another realm
  // than this page's Error, so they are recognised by shape: fetch rejects with a TypeError.
  const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
  const detail = typeof message === "string" && message ? ` (${message})` : "";
  if (name === "TypeError") {
    return `Network error: the connection to the server failed${detail}. Check that the server is running, then try again.`;
  }
  return `The request failed${detail}`;
}
