import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";

import { App } from "../src/App";
import { API_KEY_STORAGE_KEY } from "../src/apiKey";
import { ApiServer, chunk, jobBody, openAIError, replySteps } from "./server";

const server = new ApiServer();

beforeAll(async () => {
  await server.start();
});
afterAll(() => server.stop());
beforeEach(() => {
  server.reset();
  sessionStorage.clear();
});

async function renderApp() {
  const user = userEvent.setup();
  const view = render(<App baseUrl={server.url} jobPollMs={30} />);
  const picker = screen.getByLabelText("Model");
  await waitFor(() => expect(picker).toHaveValue("genesis-offline-demo"));
  return { user, view, picker };
}

function conversation() {
  return screen.getByRole("log", { name: "Conversation" });
}

function assistantReplies() {
  return within(conversation()).queryAllByLabelText("Assistant said");
}

/** The `index`th reply, which must be there. */
function reply(index: number): HTMLElement {
  const element = assistantReplies()[index];
  if (!element) throw new Error(`there is no reply ${index}`);
  return element;
}

describe("App", () => {
  it("fills the model picker from /v1/models", async () => {
    const { picker } = await renderApp();
    // Nothing grabs focus on load: keyboard users start at the top of the page.
    expect(document.body).toHaveFocus();
    const options = within(picker).getAllByRole("option");
    expect(options.map((option) => option.textContent)).toEqual([
      "genesis-offline-demo",
      "second-model",
    ]);
  });

  it("streams the reply of the picked model as it arrives, on Enter", async () => {
    const { user, picker } = await renderApp();
    await user.selectOptions(picker, "second-model");
    server.script({
      steps: [
        { write: `data: ${chunk("Hello")}\n\n` },
        { pause: 20 },
        { write: `data: ${chunk(", world")}\n\n` },
        { pause: 300 },
        { write: "data: [DONE]\n\n" },
      ],
    });
    await user.type(screen.getByLabelText("Message"), "Hi there{Enter}");

    expect(within(conversation()).getByLabelText("You said")).toHaveTextContent("Hi there");
    // The first pieces show while the stream is still open.
    await waitFor(() => expect(assistantReplies()[0]).toHaveTextContent("Hello, world"));
    expect(assistantReplies()[0]).toHaveAttribute("aria-busy", "true");
    expect(screen.getByRole("button", { name: "Stop" })).toBeInTheDocument();
    await waitFor(() => expect(assistantReplies()[0]).toHaveAttribute("aria-busy", "false"));
    expect(screen.queryByRole("button", { name: "Stop" })).not.toBeInTheDocument();
    expect(screen.getByLabelText("Message")).toHaveValue("");
    expect(server.chatRequests()[0]?.body).toEqual({
      model: "second-model",
      messages: [{ role: "user", content: "Hi there" }],
      stream: true,
    });
  });

  it("sends the whole conversation with the next message", async () => {
    const { user } = await renderApp();
    server.script({ steps: replySteps(["first ", "answer"]) }, { steps: replySteps(["two"]) });
    const input = screen.getByLabelText("Message");
    await user.type(input, "one{Enter}");
    await waitFor(() => expect(assistantReplies()[0]).toHaveAttribute("aria-busy", "false"));
    await user.type(input, "two{Enter}");
    await waitFor(() => expect(assistantReplies()[1]).toHaveTextContent("two"));
    expect(server.chatRequests()[1]?.body).toMatchObject({
      messages: [
        { role: "user", content: "one" },
        { role: "assistant", content: "first answer" },
        { role: "user", content: "two" },
      ],
    });
  });

  it("adds a line on Shift+Enter instead of sending, and never sends blank text", async () => {
    const { user } = await renderApp();
    const input = screen.getByLabelText("Message");
    await user.type(input, "line one{Shift>}{Enter}{/Shift}line two");
    expect(input).toHaveValue("line one\nline two");
    await user.clear(input);
    await user.type(input, "   {Enter}");
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
    expect(server.chatRequests()).toHaveLength(0);
  });

  it("shows the server's message when the request is rejected", async () => {
    const { user } = await renderApp();
    server.script({
      status: 413,
      body: openAIError("Request body is larger than the limit of 1024 bytes", "too_large"),
    });
    await user.type(screen.getByLabelText("Message"), "big");
    await user.click(screen.getByRole("button", { name: "Send" }));
    const alert = await within(conversation()).findByRole("alert");
    expect(alert).toHaveTextContent("Request body is larger than the limit of 1024 bytes");
    expect(screen.getByRole("button", { name: "Send" })).toBeDisabled();
    expect(screen.queryByRole("button", { name: "Stop" })).not.toBeInTheDocument();
  });

  it("keeps the partial reply and shows an error that arrives mid-stream", async () => {
    const { user } = await renderApp();
    server.script({
      steps: [
        { write: `data: ${chunk("Half a ")}\n\n` },
        { pause: 10 },
        { write: `data: ${openAIError("The upstream stopped answering", "upstream")}\n\n` },
        { write: "data: [DONE]\n\n" },
      ],
    });
    await user.type(screen.getByLabelText("Message"), "go{Enter}");
    const alert = await within(conversation()).findByRole("alert");
    expect(alert).toHaveTextContent("The upstream stopped answering");
    expect(assistantReplies()[0]).toHaveTextContent("Half a");
  });

  it("stops a streaming reply with the Stop button and closes the connection", async () => {
    const { user } = await renderApp();
    server.script({ steps: [{ write: `data: ${chunk("Still going")}\n\n` }, { hold: true }] });
    await user.type(screen.getByLabelText("Message"), "long story{Enter}");
    await waitFor(() => expect(assistantReplies()[0]).toHaveTextContent("Still going"));
    await user.click(screen.getByRole("button", { name: "Stop" }));
    await waitFor(() => expect(assistantReplies()[0]).toHaveTextContent("Stopped."));
    // Focus does not vanish with the Stop button.
    expect(screen.getByLabelText("Message")).toHaveFocus();
    await server.clientDisconnected();
    expect(within(conversation()).queryByRole("alert")).not.toBeInTheDocument();
    await user.type(screen.getByLabelText("Message"), "next");
    expect(screen.getByRole("button", { name: "Send" })).toBeEnabled();
  });

  it("keeps the API key in sessionStorage and sends it as a Bearer token", async () => {
    server.requiredKey = "sk-genesis-abc";
    const user = userEvent.setup();
    render(<App baseUrl={server.url} />);
    // Without the key the server refuses, and the page says why.
    expect(await screen.findByRole("alert")).toHaveTextContent(
      'Could not load the models: The server needs an API key (HTTP 401: Invalid API key). Enter one under "API key".',
    );

    await user.type(screen.getByLabelText("API key"), "sk-genesis-abc{Enter}");
    await waitFor(() => expect(screen.getByLabelText("Model")).toHaveValue("genesis-offline-demo"));
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    expect(sessionStorage.getItem(API_KEY_STORAGE_KEY)).toBe("sk-genesis-abc");
    expect(localStorage.length).toBe(0);
    expect(screen.getByLabelText("API key")).toHaveAttribute("type", "password");

    server.script({ steps: replySteps(["ok"]) });
    await user.type(screen.getByLabelText("Message"), "authorized?{Enter}");
    await waitFor(() => expect(assistantReplies()[0]).toHaveTextContent("ok"));
    expect(server.chatRequests()[0]?.authorization).toBe("Bearer sk-genesis-abc");

    await user.click(screen.getByRole("button", { name: "Forget key" }));
    expect(sessionStorage.getItem(API_KEY_STORAGE_KEY)).toBeNull();
    expect(await screen.findByRole("alert")).toHaveTextContent("Invalid API key");
  });

  it("says the key was refused when a request with a key answers 401", async () => {
    sessionStorage.setItem(API_KEY_STORAGE_KEY, "sk-wrong");
    const { user } = await renderApp();
    server.script({ status: 401, body: openAIError("Invalid API key", "invalid_api_key") });
    await user.type(screen.getByLabelText("Message"), "hello{Enter}");
    const alert = await within(conversation()).findByRole("alert");
    expect(alert).toHaveTextContent(
      'The server refused the API key (HTTP 401: Invalid API key). Enter a valid key under "API key".',
    );
    // The key stays in its password field: never in the page's text or the URL.
    expect(document.body.textContent).not.toContain("sk-wrong");
    expect(window.location.href).not.toContain("sk-wrong");
  });

  it.each([
    ["7", "Try again in 7 seconds."],
    ["1", "Try again in 1 second."],
    [undefined, "Try again in a moment."],
  ])("shows the retry time of a 429 (Retry-After: %s)", async (retryAfter, expected) => {
    const { user } = await renderApp();
    server.script({
      status: 429,
      body: openAIError("Rate limit reached for requests", "rate_limit_exceeded"),
      ...(retryAfter === undefined ? {} : { headers: { "Retry-After": retryAfter } }),
    });
    await user.type(screen.getByLabelText("Message"), "again{Enter}");
    const alert = await within(conversation()).findByRole("alert");
    expect(alert).toHaveTextContent(
      `Too many requests (HTTP 429: Rate limit reached for requests). ${expected}`,
    );
    // A failed turn does not lock the composer.
    await user.type(screen.getByLabelText("Message"), "later");
    expect(screen.getByRole("button", { name: "Send" })).toBeEnabled();
  });

  it("says so when the connection fails", async () => {
    const { user } = await renderApp();
    server.script({ destroy: true });
    await user.type(screen.getByLabelText("Message"), "anyone there?{Enter}");
    const alert = await within(conversation()).findByRole("alert");
    expect(alert).toHaveTextContent(/^Network error: the connection to the server failed/);
    expect(alert).toHaveTextContent("Check that the server is running, then try again.");
  });

  it("reads a key saved earlier in this tab", async () => {
    sessionStorage.setItem(API_KEY_STORAGE_KEY, "sk-from-before");
    await renderApp();
    expect(server.requests[0]?.authorization).toBe("Bearer sk-from-before");
    expect(screen.getByText("Key in use for this tab.")).toBeInTheDocument();
  });

  describe("a long prompt sent as a background job", () => {
    async function sendAsJob(user: ReturnType<typeof userEvent.setup>, text: string) {
      await user.click(screen.getByLabelText("Send as a background job (for long prompts)"));
      await user.type(screen.getByLabelText("Message"), `${text}{Enter}`);
    }

    it("queues it, shows the job's progress, then its reply", async () => {
      const { user } = await renderApp();
      server.scriptJob([
        { status: "queued" },
        { status: "queued" },
        { status: "running" },
        { status: "running", attempts: 2 },
        { status: "succeeded", attempts: 2, reply: "A long story, told at last." },
      ]);
      await sendAsJob(user, "Write a long story");

      const progress = () => within(reply(0)).getByRole("status");
      await waitFor(() => expect(progress()).toHaveTextContent("Queued as background job job_1"));
      await waitFor(() => expect(progress()).toHaveTextContent("job_1 is running…"));
      await waitFor(() => expect(progress()).toHaveTextContent("running (attempt 2)…"));
      await waitFor(() =>
        expect(assistantReplies()[0]).toHaveTextContent("A long story, told at last."),
      );
      expect(assistantReplies()[0]).toHaveAttribute("aria-busy", "false");
      expect(within(reply(0)).queryByRole("status")).not.toBeInTheDocument();

      const [created, ...polls] = server.jobRequests();
      // The chat completion body, without `stream`: the reply is read from the job.
      expect(created).toMatchObject({
        method: "POST",
        path: "/v1/jobs",
        body: {
          model: "genesis-offline-demo",
          messages: [{ role: "user", content: "Write a long story" }],
        },
      });
      expect(polls.length).toBeGreaterThanOrEqual(4);
      expect(polls.every((poll) => poll.method === "GET" && poll.path === "/v1/jobs/job_1")).toBe(
        true,
      );
      expect(server.chatRequests()).toHaveLength(0);

      // The job's reply is part of the conversation the next message sends.
      server.script({ steps: replySteps(["streamed"]) });
      await user.click(screen.getByLabelText("Send as a background job (for long prompts)"));
      await user.type(screen.getByLabelText("Message"), "and now{Enter}");
      await waitFor(() => expect(assistantReplies()[1]).toHaveTextContent("streamed"));
      expect(server.chatRequests()[0]?.body).toMatchObject({
        messages: [
          { role: "user", content: "Write a long story" },
          { role: "assistant", content: "A long story, told at last." },
          { role: "user", content: "and now" },
        ],
      });
    });

    it("shows the error of a failed job", async () => {
      const { user } = await renderApp();
      server.scriptJob([
        { status: "queued" },
        {
          status: "failed",
          attempts: 4,
          error: { message: "The upstream model provider is failing", code: "upstream_error" },
        },
      ]);
      await sendAsJob(user, "Write");
      await waitFor(() =>
        expect(within(reply(0)).getByRole("alert")).toHaveTextContent(
          "The upstream model provider is failing",
        ),
      );
    });

    it("cancels the job on the server when stopped", async () => {
      const { user } = await renderApp();
      server.scriptJob([{ status: "queued" }, { status: "running" }]);
      await sendAsJob(user, "Write forever");
      await waitFor(() =>
        expect(within(reply(0)).getByRole("status")).toHaveTextContent("running"),
      );
      await user.click(screen.getByRole("button", { name: "Stop" }));
      await waitFor(() => expect(assistantReplies()[0]).toHaveTextContent("Stopped."));
      await waitFor(() =>
        expect(server.jobRequests().at(-1)).toMatchObject({
          method: "DELETE",
          path: "/v1/jobs/job_1",
        }),
      );
      // Stopped means no more reads of the job.
      const reads = server.jobRequests().length;
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(server.jobRequests()).toHaveLength(reads);
    });

    it("explains why when the server runs no jobs", async () => {
      const { user } = await renderApp();
      server.scriptJob({
        status: 503,
        body: openAIError("Jobs need GENESIS_REDIS_URL", "jobs_unavailable"),
      });
      await sendAsJob(user, "Write");
      await waitFor(() =>
        expect(within(reply(0)).getByRole("alert")).toHaveTextContent(
          "Jobs need GENESIS_REDIS_URL",
        ),
      );
    });

    it("refuses an answer that is not a job", async () => {
      const { user } = await renderApp();
      server.scriptJob({ status: 202, body: JSON.stringify({ unexpected: true }) });
      await sendAsJob(user, "Write");
      await waitFor(() =>
        expect(within(reply(0)).getByRole("alert")).toHaveTextContent(
          "The server's answer is not a job",
        ),
      );
      expect(jobBody("job_x", { status: "queued" })).toContain('"status":"queued"');
    });
  });
});
