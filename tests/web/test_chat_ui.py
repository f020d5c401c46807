"""The chat page in headless Chromium, served by a real `genesis serve`.

The service runs the openai provider against the upstream stub (a real HTTP server speaking
OpenAI's protocol), so each test scripts the upstream: slow chunks to watch the stream grow,
a 429 with Retry-After that the service passes on, failures before and during the stream.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from genesis.service.keys import key_line, new_key
from harness.browser import ARTIFACTS, PageProblems
from harness.genesis import GenesisFactory, GenesisServer, genesis_servers
from harness.openai_stub import Fault, OpenAIStub
from harness.redis import RedisServer
from harness.worker import genesis_workers

pytestmark = [pytest.mark.integration, pytest.mark.browser]

MODEL = "gpt-4o-mini"
REPLY = "Streaming one word at a time, so the page shows each piece as it arrives."


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAIStub]:
    with OpenAIStub(log_path=tmp_path_factory.mktemp("upstream") / "stub.log") as stub:
        yield stub


def upstream_settings(stub: OpenAIStub) -> dict[str, str]:
    return {
        "GENESIS_PROVIDER": "openai",
        "GENESIS_OPENAI_BASE_URL": stub.base_url,
        "GENESIS_MODEL": MODEL,
        # A 429 or 500 from the upstream reaches the page at once instead of after retries.
        "GENESIS_OPENAI_MAX_RETRIES": "0",
    }


@pytest.fixture(scope="module")
def service(
    upstream: OpenAIStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GenesisServer]:
    with genesis_servers(tmp_path_factory.mktemp("service")) as start:
        yield start(upstream_settings(upstream))


@pytest.fixture
def chat(page: Page, service: GenesisServer, upstream: OpenAIStub) -> Page:
    """The page, loaded from the service, with the model list in."""
    upstream.reset()
    return open_chat(page, service.url)


def open_chat(page: Page, url: str, model: str = MODEL) -> Page:
    page.goto(f"{url}/")
    expect(page.get_by_label("Model", exact=True)).to_have_value(model)
    return page


def send(page: Page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def last_reply(page: Page) -> Locator:
    return (
        page.get_by_role("log", name="Conversation").get_by_label("Assistant said", exact=True).last
    )


def watch_replies(page: Page) -> None:
    """Record every text the newest reply shows, as the DOM changes (no polling gaps)."""
    page.evaluate(
        """() => {
          window.__seen = [];
          const log = document.querySelector('[role="log"]');
          new MutationObserver(() => {
            const replies = log.querySelectorAll('[aria-label="Assistant said"] .content');
            const text = replies.length ? replies[replies.length - 1].textContent : null;
            if (text && window.__seen[window.__seen.length - 1] !== text) window.__seen.push(text);
          }).observe(log, { subtree: true, childList: true, characterData: true });
        }"""
    )


def seen_texts(page: Page) -> list[str]:
    seen: list[str] = page.evaluate("() => window.__seen")
    return seen


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not true within {timeout}s"
        time.sleep(0.1)


def metric_total(server: GenesisServer, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry `labels`, from the service's /metrics."""
    total = 0.0
    for line in httpx.get(server.metrics_url, timeout=5).text.splitlines():
        if line.startswith(name) and all(
            f'{key}="{value}"' in line for key, value in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_reply_streams_in_chunk_by_chunk(
    chat: Page, upstream: OpenAIStub, problems: PageProblems
) -> None:
    upstream.script(Fault.ok(REPLY, chunk_latency=0.3))
    watch_replies(chat)
    send(chat, "Show me streaming")

    conversation = chat.get_by_role("log", name="Conversation")
    expect(conversation.get_by_label("You said", exact=True)).to_have_text(
        re.compile("Show me streaming")
    )
    reply = last_reply(chat)
    # Mid-answer: some words are in, the reply is still busy, Stop is offered.
    expect(reply.locator(".content")).to_have_text(re.compile(r"^Streaming one word"))
    expect(reply).to_have_attribute("aria-busy", "true")
    expect(chat.get_by_role("button", name="Stop")).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chat.screenshot(path=ARTIFACTS / "chat-mid-answer.png", full_page=True)

    expect(reply).to_have_attribute("aria-busy", "false", timeout=20_000)
    expect(reply.locator(".content")).to_have_text(REPLY)
    expect(chat.get_by_role("button", name="Stop")).to_have_count(0)
    seen = seen_texts(chat)
    # The page showed the reply growing piece by piece, each step extending the last.
    assert len(seen) >= 8, seen
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(seen))
    assert seen[-1] == REPLY
    body = upstream.chat_requests[-1].json
    assert body["stream"] is True
    assert body["messages"][-1] == {"role": "user", "content": "Show me streaming"}
    assert problems.messages == []


def test_the_conversation_goes_with_the_next_message(chat: Page, upstream: OpenAIStub) -> None:
    upstream.script(Fault.ok("First answer."), Fault.ok("Second answer."))
    send(chat, "one")
    expect(last_reply(chat).locator(".content")).to_have_text("First answer.")
    expect(last_reply(chat)).to_have_attribute("aria-busy", "false")
    send(chat, "two")
    expect(last_reply(chat).locator(".content")).to_have_text("Second answer.")
    assert upstream.chat_requests[-1].json["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "two"},
    ]


def test_stop_ends_the_stream_and_the_request(
    chat: Page, upstream: OpenAIStub, service: GenesisServer
) -> None:
    disconnects = metric_total(
        service, "gen_ai_client_operation_duration_seconds_count", error_type="client_disconnected"
    )
    upstream.script(Fault.ok(" ".join(f"word{n}" for n in range(60)), chunk_latency=0.25))
    send(chat, "a long story")
    reply = last_reply(chat)
    expect(reply.locator(".content")).to_have_text(re.compile(r"^word0 word1"))
    chat.get_by_role("button", name="Stop").click()

    expect(reply).to_contain_text("Stopped.")
    expect(reply).to_have_attribute("aria-busy", "false")
    # Focus moves from the vanished Stop button to the message box.
    expect(chat.get_by_label("Message", exact=True)).to_be_focused()
    stopped_at = reply.locator(".content").text_content()
    chat.wait_for_timeout(1_000)  # four more chunks' worth: none may arrive
    assert reply.locator(".content").text_content() == stopped_at
    assert stopped_at is not None
    assert "word59" not in stopped_at
    expect(chat.get_by_role("alert")).to_have_count(0)
    # The service saw the browser go away and ended the upstream call.
    wait_until(
        lambda: (
            metric_total(
                service,
                "gen_ai_client_operation_duration_seconds_count",
                error_type="client_disconnected",
            )
            > disconnects
        )
    )
    # The composer is ready for the next turn.
    chat.get_by_label("Message", exact=True).fill("next")
    expect(chat.get_by_role("button", name="Send")).to_be_enabled()


def test_a_429_shows_the_retry_time(chat: Page, upstream: OpenAIStub) -> None:
    # The upstream rate-limits; the service answers 429 and passes Retry-After on.
    upstream.script(Fault.status(429, retry_after=7))
    send(chat, "too fast")
    alert = chat.get_by_role("log", name="Conversation").get_by_role("alert")
    expect(alert).to_have_text(
        "Too many requests (HTTP 429: The upstream model provider is rate limiting requests; "
        "retry later). Try again in 7 seconds."
    )
    expect(chat.get_by_role("button", name="Stop")).to_have_count(0)


def test_an_http_error_shows_the_services_message(chat: Page, upstream: OpenAIStub) -> None:
    upstream.script(Fault.status(500))
    send(chat, "break, please")
    alert = chat.get_by_role("log", name="Conversation").get_by_role("alert")
    expect(alert).to_have_text(re.compile(r"^The upstream model provider failed"))


def test_a_stream_that_breaks_keeps_what_arrived(chat: Page, upstream: OpenAIStub) -> None:
    upstream.script(Fault.reset_mid_stream(after_chunks=4))
    send(chat, "then fail")
    reply = last_reply(chat)
    expect(reply.get_by_role("alert")).to_be_visible()
    assert reply.locator(".content").text_content()


def test_a_server_that_is_gone_is_a_network_error(
    page: Page, upstream: OpenAIStub, genesis_server: GenesisFactory, built_ui: Path
) -> None:
    server = genesis_server(upstream_settings(upstream))
    open_chat(page, server.url)
    server.stop(grace=10)
    send(page, "hello?")
    alert = page.get_by_role("log", name="Conversation").get_by_role("alert")
    expect(alert).to_have_text(
        re.compile(
            r"^Network error: the connection to the server failed \(.+\)\. "
            r"Check that the server is running, then try again\.$"
        )
    )


def test_the_api_key_stays_in_session_storage_and_goes_as_a_bearer_token(
    chat: Page, service: GenesisServer
) -> None:
    key = "sk-genesis-browser-test"
    sent: list[str | None] = []
    chat.on(
        "request",
        lambda request: (
            sent.append(request.headers.get("authorization")) if "/v1/" in request.url else None
        ),
    )
    field = chat.get_by_label("API key", exact=True)
    expect(field).to_have_attribute("type", "password")
    field.fill(key)
    field.press("Enter")
    expect(chat.get_by_text("Key in use for this tab.")).to_be_visible()
    expect(chat.get_by_label("Model", exact=True)).to_have_value(MODEL)
    assert chat.evaluate("() => sessionStorage.getItem('genesis.apiKey')") == key
    assert chat.evaluate("() => localStorage.length") == 0
    assert f"Bearer {key}" in sent
    assert key not in chat.url

    chat.reload()
    expect(chat.get_by_text("Key in use for this tab.")).to_be_visible()
    chat.get_by_role("button", name="Forget key").click()
    assert chat.evaluate("() => sessionStorage.getItem('genesis.apiKey')") is None


def test_keyboard_alone_reaches_every_control_in_order(chat: Page, upstream: OpenAIStub) -> None:
    upstream.script(Fault.ok("Typed with the keyboard."))
    chat.locator("body").focus()
    order = []
    for _ in range(4):
        chat.keyboard.press("Tab")
        order.append(chat.evaluate("() => document.activeElement.labels?.[0]?.textContent"))
        order[-1] = order[-1] or chat.evaluate("() => document.activeElement.textContent")
    assert order == ["Model", "API key", "Use key", "Message"]
    chat.keyboard.type("hello from the keyboard")
    chat.keyboard.press("Enter")
    expect(last_reply(chat).locator(".content")).to_have_text("Typed with the keyboard.")
    # Focus stays in the composer, ready for the next message.
    assert chat.evaluate("() => document.activeElement.tagName") == "TEXTAREA"


def test_the_default_offline_service_answers_in_the_page(
    page: Page, genesis_server: GenesisFactory, built_ui: Path, problems: PageProblems
) -> None:
    # `genesis serve` with nothing configured: the page works with the offline demo provider.
    server = genesis_server()
    open_chat(page, server.url, model="genesis-offline-demo")
    expect(page).to_have_title("genesis chat")
    send(page, "hello offline")
    expect(last_reply(page).locator(".content")).to_contain_text(
        "This is the genesis offline demo provider"
    )
    expect(last_reply(page).locator(".content")).to_contain_text('You said: "hello offline"')
    assert problems.messages == []


def test_a_long_prompt_runs_as_a_background_job_and_its_reply_arrives(
    page: Page,
    genesis_server: GenesisFactory,
    redis_server: RedisServer,
    tmp_path: Path,
    problems: PageProblems,
) -> None:
    # The real jobs path: the service queues on Redis, a `genesis worker` started later runs it.
    settings = {"GENESIS_REDIS_URL": redis_server.url}
    server = genesis_server(settings)
    open_chat(page, server.url, model="genesis-offline-demo")
    page.get_by_label("Send as a background job (for long prompts)").check()
    send(page, "a long prompt for later")

    progress = last_reply(page).get_by_role("status")
    expect(progress).to_contain_text("Queued as background job job_")
    job_id = re.search(r"job_[0-9a-f]+", progress.inner_text())
    assert job_id is not None
    with genesis_workers(tmp_path / "workers") as start_worker:
        start_worker(settings)
        expect(last_reply(page).locator(".content")).to_contain_text(
            'You said: "a long prompt for later"'
        )
    expect(progress).to_have_count(0)
    expect(last_reply(page)).to_have_attribute("aria-busy", "false")
    job = httpx.get(f"{server.url}/v1/jobs/{job_id.group()}", timeout=5).json()
    assert job["status"] == "succeeded"
    assert job["result"]["choices"][0]["message"]["content"] == (
        last_reply(page).locator(".content").inner_text()
    )
    assert problems.messages == []


def test_genesis_own_401_and_429_reach_the_page_in_words(
    page: Page, genesis_server: GenesisFactory, tmp_path: Path, problems: PageProblems
) -> None:
    # Not the upstream's errors passed on: the service's own key check and rate limiter.
    key = new_key()
    keys = tmp_path / "api-keys"
    keys.write_text(key_line("browser", key) + "\n")
    server = genesis_server({"GENESIS_API_KEYS_FILE": str(keys), "GENESIS_RATE_LIMIT_RPM": "1"})
    page.goto(f"{server.url}/")
    expect(page.get_by_text("Could not load the models")).to_contain_text(
        "The server needs an API key (HTTP 401"
    )
    field = page.get_by_label("API key", exact=True)
    field.fill("gsk_" + "w" * 43)
    field.press("Enter")
    expect(page.get_by_text("Could not load the models")).to_contain_text(
        "The server refused the API key (HTTP 401: Incorrect API key provided."
    )
    field.fill(key)
    field.press("Enter")
    expect(page.get_by_label("Model", exact=True)).to_have_value("genesis-offline-demo")

    send(page, "the one request this minute allows")
    expect(last_reply(page).locator(".content")).to_contain_text("You said:")
    send(page, "one too many")
    expect(last_reply(page).get_by_role("alert")).to_have_text(
        re.compile(r"^Too many requests \(HTTP 429: .+\)\. Try again in \d+ seconds?\.$")
    )
    # The browser logs each refused fetch; nothing else went wrong, and no key was logged.
    assert all("Failed to load resource" in message for message in problems.messages)
    assert not any(key in message for message in problems.messages)


CONTRAST_RATIOS = """() => {
  const parse = (color) => {
    const [r, g, b, a = 1] = color.match(/[\\d.]+/g).map(Number);
    return { r, g, b, a };
  };
  const channel = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  const luminance = ({ r, g, b }) =>
    0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (element) => {
    for (let e = element; e; e = e.parentElement) {
      const color = parse(getComputedStyle(e).backgroundColor);
      if (color.a > 0) return color;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const found = [];
  for (const element of document.querySelectorAll("body *")) {
    const text = [...element.childNodes]
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent.trim())
      .join("");
    // Disabled controls are exempt (WCAG 1.4.3); options are drawn by the platform.
    if (!text || element.closest(":disabled, option") || !element.checkVisibility()) continue;
    const a = luminance(parse(getComputedStyle(element).color));
    const b = luminance(background(element));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    found.push({ text: text.slice(0, 40), ratio: Math.round(ratio * 100) / 100 });
  }
  return found;
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_has_sufficient_contrast(chat: Page, upstream: OpenAIStub, scheme: str) -> None:
    chat.emulate_media(color_scheme=scheme)
    # Every kind of text the page shows: messages, an error, hints, the Stop button.
    upstream.script(Fault.status(429, retry_after=3), Fault.ok(REPLY, chunk_latency=0.5))
    send(chat, "first")
    expect(chat.get_by_role("alert")).to_be_visible()
    send(chat, "second")
    expect(chat.get_by_role("button", name="Stop")).to_be_visible()
    texts = chat.evaluate(CONTRAST_RATIOS)
    shown = {text["text"] for text in texts}
    assert {"genesis chat", "Model", "API key", "No key set.", "Stop", "You"} <= shown, shown
    # WCAG 2.2 AA for normal-size text.
    assert [text for text in texts if text["ratio"] < 4.5] == []
