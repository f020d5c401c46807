import { useEffect, useRef } from "react";

import type { Entry } from "../conversation";

function jobProgress(job: NonNullable<Entry["job"]>): string {
  // Only a job still on its way is shown here: a finished one ends the entry's streaming.
  const attempt = job.attempts > 1 ? ` (attempt ${job.attempts})` : "";
  return job.status === "queued"
    ? `Queued as background job ${job.id}${attempt}…`
    : `Background job ${job.id} is running${attempt}…`;
}

const SPEAKER = { user: "You", assistant: "Assistant" } as const;

export function MessageList({ entries }: { entries: readonly Entry[] }) {
  const list = useRef<HTMLOListElement>(null);

  // Follow the reply as it grows.
  useEffect(() => {
    const element = list.current;
    if (element) element.scrollTop = element.scrollHeight;
  }, [entries]);

  return (
    <ol ref={list} className="messages" role="log" aria-label="Conversation" aria-live="polite">
      {entries.length === 0 && <li className="empty">No messages yet.</li>}
      {entries.map((entry) => (
        <li
          key={entry.id}
          className={`message ${entry.role} ${entry.status}`}
          aria-busy={entry.status === "streaming"}
          aria-label={`${SPEAKER[entry.role]} said`}
        >
          <span className="speaker">{SPEAKER[entry.role]}</span>
          <div className="content">{entry.content}</div>
          {entry.status === "streaming" && entry.content === "" && !entry.job && (
            <span className="status">Waiting for the reply…</span>
          )}
          {entry.status === "streaming" && entry.job && (
            <span className="status" role="status">
              {jobProgress(entry.job)}
            </span>
          )}
          {entry.status === "stopped" && <span className="status">Stopped.</span>}
          {entry.status === "failed" && (
            <p role="alert" className="error">
              {entry.error}
            </p>
          )}
        </li>
      ))}
    </ol>
  );
}
