import { useCallback, useEffect, useRef, useState } from "react";

import {
  ApiError,
  followJob,
  jobReply,
  listModels,
  streamChat,
  type ChatMessage,
  type Connection,
} from "./api";
import { loadApiKey, saveApiKey } from "./apiKey";
import { ApiKeyForm } from "./components/ApiKeyForm";
import { Composer } from "./components/Composer";
import { MessageList } from "./components/MessageList";
import { ModelPicker } from "./components/ModelPicker";
import { history, update, type Entry } from "./conversation";
import { describeError } from "./messages";

export interface AppProps {
  /** Origin of the API; "" (the default) is the page's own origin. */
  baseUrl?: string;
  /** How often a background job is read while it runs. */
  jobPollMs?: number;
}

type Models =
  { state: "loading" } | { state: "loaded"; ids: string[] } | { state: "failed"; message: string };

export function App({ baseUrl = "", jobPollMs = 1000 }: AppProps) {
  const [apiKey, setApiKey] = useState(loadApiKey);
  const [models, setModels] = useState<Models>({ state: "loading" });
  const [model, setModel] = useState("");
  const [entries, setEntries] = useState<Entry[]>([]);
  const [streaming, setStreaming] = useState(false);
  const nextId = useRef(0);
  const inFlight = useRef<AbortController | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    setModels({ state: "loading" });
    listModels({ baseUrl, apiKey }, controller.signal).then(
      (ids) => {
        setModels({ state: "loaded", ids });
        setModel((current) => (ids.includes(current) ? current : (ids[0] ?? "")));
      },
      (error: unknown) => {
        if (!controller.signal.aborted)
          setModels({ state: "failed", message: describeError(error, apiKey !== "") });
      },
    );
    return () => controller.abort();
  }, [baseUrl, apiKey]);

  // A reply still streaming when the page goes away must not keep its connection open.
  useEffect(() => () => inFlight.current?.abort(), []);

  const onKey = useCallback((key: string) => {
    saveApiKey(key);
    setApiKey(key);
  }, []);

  /** Queue the reply as a background job and show its progress until it is finished. */
  const runJob = useCallback(
    async (
      connection: Connection,
      messages: ChatMessage[],
      replyId: number,
      signal: AbortSignal,
    ) => {
      for await (const job of followJob(connection, model, messages, signal, jobPollMs)) {
        const progress = { id: job.id, status: job.status, attempts: job.attempts };
        if (job.status === "failed") {
          throw new ApiError(job.error?.message ?? "The job failed", null, job.error?.code ?? null);
        }
        const reply = job.status === "succeeded" ? jobReply(job) : null;
        const finished =
          job.status === "succeeded" ? "done" : job.status === "cancelled" ? "stopped" : null;
        setEntries((current) =>
          update(current, replyId, (entry) => ({
            ...entry,
            job: progress,
            content: reply ?? entry.content,
            status: finished ?? entry.status,
          })),
        );
      }
    },
    [jobPollMs, model],
  );

  const send = useCallback(
    async (text: string, asJob: boolean) => {
      const connection: Connection = { baseUrl, apiKey };
      const userEntry: Entry = {
        id: nextId.current++,
        role: "user",
        content: text,
        status: "done",
      };
      const replyId = nextId.current++;
      const messages = history([...entries, userEntry]);
      setEntries((current) => [
        ...current,
        userEntry,
        { id: replyId, role: "assistant", content: "", status: "streaming" },
      ]);
      const controller = new AbortController();
      inFlight.current = controller;
      setStreaming(true);
      try {
        if (asJob) {
          await runJob(connection, messages, replyId, controller.signal);
        } else {
          for await (const piece of streamChat(connection, model, messages, controller.signal)) {
            setEntries((current) =>
              update(current, replyId, (entry) => ({ ...entry, content: entry.content + piece })),
            );
          }
          setEntries((current) =>
            update(current, replyId, (entry) => ({ ...entry, status: "done" })),
          );
        }
      } catch (error) {
        // Whatever the stream raised after a Stop is the abort's doing.
        const stopped = controller.signal.aborted;
        setEntries((current) =>
          update(current, replyId, (entry) =>
            stopped
              ? { ...entry, status: "stopped" }
              : { ...entry, status: "failed", error: describeError(error, apiKey !== "") },
          ),
        );
      } finally {
        inFlight.current = null;
        setStreaming(false);
      }
    },
    [apiKey, baseUrl, entries, model, runJob],
  );

  const stop = useCallback(() => inFlight.current?.abort(), []);

  return (
    <div className="app">
      <header className="toolbar">
        <h1>genesis chat</h1>
        <ModelPicker
          models={models.state === "loaded" ? models.ids : []}
          value={model}
          onChange={setModel}
          loading={models.state === "loading"}
          disabled={streaming}
        />
        <ApiKeyForm saved={apiKey} onSave={onKey} />
      </header>
      {models.state === "failed" && (
        <p role="alert" className="banner">
          Could not load the models: {models.message}
        </p>
      )}
      <main className="chat">
        <MessageList entries={entries} />
        <Composer
          canSend={!streaming && model !== ""}
          streaming={streaming}
          onSend={(text, asJob) => void send(text, asJob)}
          onStop={stop}
        />
      </main>
    </div>
  );
}
