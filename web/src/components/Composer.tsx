import { useEffect, useId, useRef, useState, type KeyboardEvent, type SubmitEvent } from "react";

export interface ComposerProps {
  canSend: boolean;
  streaming: boolean;
  /** `asJob`: queue it as a background job (`POST /v1/jobs`) instead of streaming. */
  onSend: (text: string, asJob: boolean) => void;
  onStop: () => void;
}

/** Enter sends, Shift+Enter starts a new line. */
export function Composer({ canSend, streaming, onSend, onStop }: ComposerProps) {
  const id = useId();
  const jobId = useId();
  const [text, setText] = useState("");
  const [asJob, setAsJob] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  const ready = canSend && text.trim() !== "";

  // The Stop button goes away when the reply ends; focus it held would fall to <body>,
  // so it moves to the message box, ready for the next turn.
  const wasStreaming = useRef(streaming);
  useEffect(() => {
    const ended = wasStreaming.current && !streaming;
    wasStreaming.current = streaming;
    if (ended && document.activeElement === document.body) input.current?.focus();
  }, [streaming]);

  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!ready) return;
    onSend(text.trim(), asJob);
    setText("");
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // An IME composing text uses Enter to pick a candidate, not to send.
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      event.currentTarget.form?.requestSubmit();
    }
  };

  return (
    <form className="composer" onSubmit={submit} aria-label="Send a message">
      <label htmlFor={id}>Message</label>
      <textarea
        ref={input}
        id={id}
        rows={3}
        value={text}
        placeholder="Ask something (Enter sends, Shift+Enter adds a line)"
        onChange={(event) => setText(event.target.value)}
        onKeyDown={onKeyDown}
      />
      <div className="actions">
        <span className="as-job">
          <input
            id={jobId}
            type="checkbox"
            checked={asJob}
            onChange={(event) => setAsJob(event.target.checked)}
          />
          <label htmlFor={jobId}>Send as a background job (for long prompts)</label>
        </span>
        {streaming && (
          <button type="button" onClick={onStop}>
            Stop
          </button>
        )}
        <button type="submit" disabled={!ready}>
          Send
        </button>
      </div>
    </form>
  );
}
