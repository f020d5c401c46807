import { useId, useState, type SubmitEvent } from "react";

export interface ApiKeyFormProps {
  /** The key in use ("" for none). */
  saved: string;
  onSave: (key: string) => void;
}

/** The key is applied on submit, not per keystroke, so half-typed keys never reach the server. */
export function ApiKeyForm({ saved, onSave }: ApiKeyFormProps) {
  const id = useId();
  const hintId = useId();
  const [draft, setDraft] = useState(saved);

  const submit = (event: SubmitEvent<HTMLFormElement>) => {
    event.preventDefault();
    onSave(draft.trim());
  };

  return (
    <form className="field api-key" onSubmit={submit} aria-label="API key settings">
      <label htmlFor={id}>API key</label>
      <input
        id={id}
        type="password"
        autoComplete="off"
        spellCheck={false}
        value={draft}
        placeholder="optional"
        aria-describedby={hintId}
        onChange={(event) => setDraft(event.target.value)}
      />
      <button type="submit">Use key</button>
      {saved && (
        <button
          type="button"
          onClick={() => {
            setDraft("");
            onSave("");
          }}
        >
          Forget key
        </button>
      )}
      <span id={hintId} className="hint">
        {saved ? "Key in use for this tab." : "No key set."}
      </span>
    </form>
  );
}
