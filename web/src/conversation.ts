/** The conversation as pure data: what the page shows, and what the next request sends. */

import type { ChatMessage, JobStatus } from "./api";

export type Status = "streaming" | "done" | "stopped" | "failed";

export interface Entry {
  id: number;
  role: "user" | "assistant";
  content: string;
  status: Status;
  /** The server's (or the client's) message when `status` is "failed". */
  error?: string;
  /** For a reply sent as a background job: the job as last read. */
  job?: { id: string; status: JobStatus; attempts: number };
}

/** The messages a new request carries: every turn with text, failed partial replies included,
 * so the model sees what the user saw. */
export function history(entries: readonly Entry[]): ChatMessage[] {
  return entries
    .filter((entry) => entry.content !== "")
    .map((entry) => ({ role: entry.role, content: entry.content }));
}

/** `entries` with the entry `id` changed by `change`. */
export function update(
  entries: readonly Entry[],
  id: number,
  change: (entry: Entry) => Entry,
): Entry[] {
  return entries.map((entry) => (entry.id === id ? change(entry) : entry));
}
