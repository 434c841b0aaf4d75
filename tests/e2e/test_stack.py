"""The whole serving stack as `make run` starts it: vLLM (fast tier), llama.cpp
llama-server (smart tier), the LiteLLM gateway with the stratum router, and Open WebUI.

``tests/support/stack.py`` runs ``scripts/stack/run.sh`` itself (set-up included: on a fresh machine this
installs and builds everything first, about 20 minutes; with the cache warm the stack is up
in about a minute) and stops it with Ctrl-C. Every request goes through the OpenAI client
or Open WebUI's API to the real gateway; the tiers really generate text on the CPU.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from PIL import Image

import browser
from clients import parse_metric
from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stack import MASTER_KEY, RUN_SH, Stack, group_members
from waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]

# Tokens per second each tier gave, filled by the tests, printed at the end.
THROUGHPUT: dict[str, list[float]] = {"fast": [], "smart": []}


@pytest.fixture(scope="module")
def labels_settings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's router settings as they are, but for the label store: in a temp dir
    (STRATUM_CONFIG), not beside litellm_config.yaml."""
    folder = tmp_path_factory.mktemp("stack-settings")
    section = yaml.safe_load((ROOT / "litellm_config.yaml").read_text())["callback_settings"]["stratum"]
    section["learning"]["store"]["path"] = str(folder / "labels.db")
    path = folder / "stratum.yaml"
    path.write_text(yaml.safe_dump({"stratum": section}))
    return path


@pytest.fixture(scope="module")
def stack(labels_settings: Path) -> Iterator[Stack]:
    with Stack(webui=True, env={"STRATUM_CONFIG": str(labels_settings)}) as s:
        yield s


def metric(url: str, name: str, **labels: str) -> float:
    r = httpx.get(url, timeout=10)
    r.raise_for_status()
    return parse_metric(r.text, name, **labels) or 0.0


def routed(stack: Stack, prompt: str, max_tokens: int = 24) -> tuple[Any, dict[str, str], float]:
    t0 = time.monotonic()
    raw = stack.client(timeout=300).chat.completions.with_raw_response.create(
        model="gemma4-auto", max_tokens=max_tokens, temperature=0,
        messages=[{"role": "user", "content": prompt}])
    return raw.parse(), {k.lower(): v for k, v in raw.headers.items()}, time.monotonic() - t0


def streamed(stack: Stack, prompt: str, model: str = "gemma4-auto", max_tokens: int = 32) -> dict[str, Any]:
    """A streamed request through the gateway: headers, text, chunks, ttft, tokens/s."""
    t0 = time.monotonic()
    first: float | None = None
    text, chunks, usage = "", 0, None
    with stack.client(timeout=300).chat.completions.with_streaming_response.create(
            model=model, max_tokens=max_tokens, temperature=0, stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": prompt}]) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        for chunk in response.parse():
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.choices and chunk.choices[0].delta.content:
                if first is None:
                    first = time.monotonic()
                text += chunk.choices[0].delta.content
                chunks += 1
    end = time.monotonic()
    tokens = usage.completion_tokens if usage else chunks
    decode_s = end - (first or end)
    return {"headers": headers, "text": text, "chunks": chunks, "ttft": (first or end) - t0,
            "tokens": tokens, "tok_s": (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else 0.0}


def streamed_to(stack: Stack, prompt: str, tier: str, **kw: Any) -> dict[str, Any]:
    """``streamed``, expecting ``tier``. On a busy CPU the smart tier's time to first token
    can exceed the router's 2 s SLA, and the router then rightly sends hard requests to the
    fast tier (latency_sla) until its next probe (every 10 s) reaches the smart tier again:
    wait for that probe instead of failing."""
    for _ in range(4):
        r = streamed(stack, prompt, **kw)
        if r["headers"]["x-stratum-tier"] == tier:
            return r
        assert r["headers"]["x-stratum-reason"] == "latency_sla", r["headers"]
        time.sleep(10.5)
    raise AssertionError(f"never routed to {tier}: {r['headers']}")


# --- the stack answers, each tier through its real engine ---------------------------------

@pytest.mark.slow
def test_ready_banner_lists_every_service(stack: Stack) -> None:
    out = stack.text()
    for needle in (f"http://127.0.0.1:{stack.ports['gateway']}/v1", f"http://127.0.0.1:{stack.ports['fast']}/v1",
                   f"http://127.0.0.1:{stack.ports['smart']}/v1", f"http://127.0.0.1:{stack.ports['webui']}/",
                   "curl -si", "Press Ctrl-C to stop."):
        assert needle in out, out
    names = set(stack.recorded_pgids.values())
    assert names == {"llama-server", "vLLM", "gateway", "Open WebUI"}, names
    # The fast tier is vLLM serving gemma4-fast, the smart tier llama.cpp with 2 slots.
    models = httpx.get(f"{stack.fast}/v1/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == ["gemma4-fast"]
    assert models["data"][0]["owned_by"] == "vllm"
    props = httpx.get(f"{stack.smart}/props", timeout=10).json()
    assert props["total_slots"] == 2


@pytest.mark.slow
def test_simple_request_is_answered_by_vllm(stack: Stack) -> None:
    before = metric(f"{stack.fast}/metrics", "vllm:request_success_total")
    reply, headers, _ = routed(stack, SIMPLE_PROMPT)
    assert headers["x-stratum-tier"] == "fast", headers
    assert headers["x-stratum-reason"] == "simple", headers
    assert headers["x-litellm-model-group"] == "gemma4-fast"
    assert reply.choices[0].message.content.strip()
    assert reply.usage.completion_tokens > 0
    assert metric(f"{stack.fast}/metrics", "vllm:request_success_total") == before + 1


@pytest.mark.slow
def test_hard_request_is_answered_by_llama_server(stack: Stack) -> None:
    # Streamed: the router's SLA reads time to first token, and the first sample a tier
    # gives decides whether it counts whole-request times (on a CPU, many seconds) instead.
    before = metric(f"{stack.smart}/metrics", "llamacpp:tokens_predicted_total")
    r = streamed(stack, COMPLEX_PROMPT, max_tokens=24)
    assert r["headers"]["x-stratum-tier"] == "smart", r["headers"]
    assert r["headers"]["x-stratum-reason"] == "complex", r["headers"]
    assert r["headers"]["x-litellm-model-group"] == "gemma4-smart"
    assert r["text"].strip() and r["tokens"] > 0, r
    after = metric(f"{stack.smart}/metrics", "llamacpp:tokens_predicted_total")
    assert after - before >= r["tokens"]


@pytest.mark.slow
def test_streaming_through_the_gateway_reaches_both_tiers(stack: Stack) -> None:
    for prompt, tier in ((SIMPLE_PROMPT, "fast"), (COMPLEX_PROMPT, "smart")):
        for _ in range(2):
            r = streamed_to(stack, prompt, tier, max_tokens=48)
            assert r["chunks"] > 1 and r["text"].strip(), r
            THROUGHPUT[tier].append(r["tok_s"])


@pytest.mark.slow
def test_router_saw_real_time_to_first_token_from_both_tiers(stack: Stack) -> None:
    # Streams above gave each tier TTFT samples through the gateway's success callbacks.
    text = stack.gateway_metrics()
    for tier in ("fast", "smart"):
        ttft = parse_metric(text, "stratum_tier_latency_ema_seconds", tier=tier, measure="ttft")
        samples = parse_metric(text, "stratum_tier_latency_samples", tier=tier)
        assert ttft is not None and 0.0 < ttft < 60.0, (tier, ttft)
        assert samples is not None and samples >= 2, (tier, samples)
    # Routed there: the hard request and two streams (as "complex", or "sla_probe" when the
    # CPU was slow enough to trip the SLA; see streamed_to).
    decisions = parse_metric(text, "stratum_decisions_total", tier="smart")
    assert decisions is not None and decisions >= 3, text


@pytest.mark.slow
def test_the_printed_curl_example_shows_a_smart_decision(stack: Stack) -> None:
    # The request run.sh tells people to try, sent as printed (after streams were seen, so
    # the router's SLA reads time to first token, not this whole request's duration).
    out = stack.text()
    body = re.search(r"-d '(\{.*\})'", out)
    assert body, out
    assert f"Bearer {MASTER_KEY}" in out and f"http://127.0.0.1:{stack.ports['gateway']}/v1/chat/completions" in out
    for _ in range(4):
        r = httpx.post(f"{stack.gateway}/v1/chat/completions", content=body.group(1), timeout=300,
                       headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
        r.raise_for_status()
        if r.headers["x-stratum-reason"] != "latency_sla":  # see streamed_to
            break
        time.sleep(10.5)
    assert r.headers["x-stratum-tier"] == "smart", dict(r.headers)
    assert r.headers["x-litellm-model-group"] == "gemma4-smart"
    assert r.json()["choices"][0]["message"]["content"].strip()


@pytest.mark.slow
def test_smart_tier_queues_beyond_its_two_slots(stack: Stack) -> None:
    """Four streams at once at the smart tier: two run, two wait; /metrics and /slots show it."""
    metrics_url = f"{stack.smart}/metrics"
    before = metric(metrics_url, "llamacpp:tokens_predicted_total")
    seen = {"processing": 0.0, "deferred": 0.0, "busy_slots": 0}
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(timeout=5) as c:
            while not done.is_set():
                text = c.get(metrics_url).text
                seen["processing"] = max(seen["processing"], parse_metric(text, "llamacpp:requests_processing") or 0)
                seen["deferred"] = max(seen["deferred"], parse_metric(text, "llamacpp:requests_deferred") or 0)
                slots = c.get(f"{stack.smart}/slots").json()
                seen["busy_slots"] = max(seen["busy_slots"], sum(1 for s in slots if s.get("is_processing")))
                time.sleep(0.05)

    async def burst() -> list[Any]:
        client = stack.async_client(timeout=300)
        try:
            return await asyncio.gather(*(
                client.chat.completions.create(
                    model="gemma4-smart", max_tokens=48, temperature=0,
                    messages=[{"role": "user", "content": f"({i}) {COMPLEX_PROMPT}"}])
                for i in range(4)))
        finally:
            await client.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        replies = asyncio.run(burst())
    finally:
        done.set()
        watcher.join(10)
    assert all(r.choices[0].message.content.strip() for r in replies)
    assert seen["busy_slots"] == 2, seen
    assert seen["processing"] == 2, seen
    assert seen["deferred"] >= 1, seen
    after = metric(metrics_url, "llamacpp:tokens_predicted_total")
    assert after - before >= sum(r.usage.completion_tokens for r in replies)


# --- Open WebUI in front of the gateway --------------------------------------------------------

def webui_headers(stack: Stack) -> dict[str, str]:
    # WEBUI_AUTH=False: signing in with empty credentials yields the local admin's token.
    r = httpx.post(f"{stack.webui_url}/api/v1/auths/signin", json={"email": "", "password": ""}, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.slow
def test_open_webui_lists_gemma4_auto_and_chats_through_the_gateway(stack: Stack) -> None:
    headers = webui_headers(stack)
    models = httpx.get(f"{stack.webui_url}/api/models", headers=headers, timeout=60)
    models.raise_for_status()
    ids = {m["id"] for m in models.json()["data"]}
    assert {"gemma4-auto", "gemma4-fast", "gemma4-smart"} <= ids, ids

    before = parse_metric(stack.gateway_metrics(), "stratum_decisions_total", tier="fast", reason="simple") or 0
    r = httpx.post(f"{stack.webui_url}/api/chat/completions", headers=headers, timeout=300, json={
        "model": "gemma4-auto", "stream": False, "max_tokens": 24,
        "messages": [{"role": "user", "content": SIMPLE_PROMPT}]})
    r.raise_for_status()
    body = r.json()
    assert body["choices"][0]["message"]["content"].strip(), body
    after = parse_metric(stack.gateway_metrics(), "stratum_decisions_total", tier="fast", reason="simple") or 0
    assert after == before + 1  # the router decided it: Open WebUI went through the gateway


# About 3,000 tokens: more than a smart slot holds (2 slots of 4096 / 2), well within the fast
# tier's 8,192 (scripts/stack/paths.py), as a pasted document is.
PASTED = ("Clause 4. The licensee shall keep the source code confidential, shall not sublicense it, and "
          "shall report every security incident to the licensor within seventy-two hours of discovery. ") * 70


@pytest.mark.slow
def test_open_webui_gets_an_answer_to_a_long_pasted_text_not_a_context_error(stack: Stack) -> None:
    """What Open WebUI's page sends when a user pastes a long document and asks a hard
    question about it (through its API, as the page does): the smart tier's slot cannot
    hold it, so the router sends it to the fast tier, whose context can (its context read
    from vLLM's /v1/models, the smart one's from llama-server's /props)."""
    headers = webui_headers(stack)
    question = ("Analyse step by step whether the following licence terms are enforceable, compare them with "
                "common practice and explain every obligation:\n\n" + PASTED)
    routed(stack, SIMPLE_PROMPT, max_tokens=4)  # the backend pollers start with the first request
    assert wait_until(lambda: (stack.metric("stratum_backend_slots", tier="smart") or 0) > 0
                      and stack.metric("stratum_backend_up", tier="fast", status="ok") == 1, 60, 0.5)
    before = decisions(stack)
    r = httpx.post(f"{stack.webui_url}/api/chat/completions", headers=headers, timeout=600, json={
        "model": "gemma4-auto", "stream": False, "max_tokens": 32,
        "messages": [{"role": "user", "content": question}]})
    assert r.status_code == 200, r.text[:500]
    assert r.json()["choices"][0]["message"]["content"] is not None, r.json()
    after = decisions(stack)
    assert after.get(("fast", "context_fit"), 0) == before.get(("fast", "context_fit"), 0) + 1, (before, after)


def stratum_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / ".venv" / "bin" / "stratum"), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_thumbs_down_in_open_webui_becomes_a_label_joined_to_the_decision(stack: Stack, labels_settings: Path) -> None:
    headers = webui_headers(stack)
    api = f"{stack.webui_url}/api"
    model_item = next(m for m in httpx.get(f"{api}/models", headers=headers, timeout=60).json()["data"]
                      if m["id"] == "gemma4-auto")
    # A new chat as Open WebUI's page starts one (without a socket: the reply comes back
    # at once): the answer's message id is the page's, and the connection sends it as a header.
    question, answer_id, user_id = "hello, what day comes after monday?", str(uuid.uuid4()), str(uuid.uuid4())
    before = decisions(stack)
    r = httpx.post(f"{api}/chat/completions", headers=headers, timeout=300, json={
        "model": "gemma4-auto", "stream": False, "max_tokens": 24, "params": {}, "features": {},
        "model_item": model_item, "messages": [{"role": "user", "content": question}],
        "id": answer_id, "message_ids": [{"model_id": "gemma4-auto", "message_id": answer_id, "modelIdx": 0}],
        "parent_id": None,
        "user_message": {"id": user_id, "parentId": None, "childrenIds": [answer_id], "role": "user",
                         "content": question, "timestamp": int(time.time()), "models": ["gemma4-auto"]}})
    r.raise_for_status()
    assert r.json()["choices"][0]["message"]["content"].strip(), r.json()
    after = decisions(stack)
    assert after.get(("fast", "simple"), 0) == before.get(("fast", "simple"), 0) + 1, (before, after)

    store = Path(yaml.safe_load(labels_settings.read_text())["stratum"]["learning"]["store"]["path"])

    def kept() -> list[tuple[str, str, int]]:
        if not store.exists():
            return []
        with sqlite3.connect(store) as db:
            return db.execute("SELECT message_id, tier, first_tier FROM decisions").fetchall()

    assert wait_until(lambda: answer_id in {row[0] for row in kept()}, 30, 0.2), kept()
    assert (answer_id, "fast", 1) in kept()

    # The user gives the answer a thumbs-down, as the page does.
    r = httpx.post(f"{api}/v1/evaluations/feedback", headers=headers, timeout=30, json={
        "type": "rating", "data": {"rating": -1, "model_id": "gemma4-auto"},
        "meta": {"message_id": answer_id, "model_id": "gemma4-auto"}})
    r.raise_for_status()

    token = headers["Authorization"].removeprefix("Bearer ")
    imported = stratum_cli("labels", "import-openwebui", "--url", stack.webui_url, "--key", token,
                           "--config", str(labels_settings))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "1 labels from ratings of first-tier answers" in imported.stdout, imported.stdout
    exported = stratum_cli("labels", "export", "--config", str(labels_settings))
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(row["ref"], row["source"], row["needs_strong"], row["tier"]) for row in rows] == [
        (f"openwebui:{answer_id}", "openwebui", True, "fast")]
    assert "prompt" not in rows[0]  # text off: the label holds features, not the question
    with sqlite3.connect(store) as db:
        assert not any(question in str(value) for row in db.execute("SELECT * FROM labels") for value in row)


WEBUI_QUESTION = "What is the capital of France?"
WEBUI_SCREENSHOT = ROOT / ".artifacts" / "webui-chat.png"
SCREEN = (1280, 900)


def decisions(stack: Stack) -> dict[tuple[str, str], float]:
    """The router's decision counters: {(tier, reason): count}."""
    out: dict[tuple[str, str], float] = {}
    for m in re.finditer(r'^stratum_decisions_total\{([^}]*)\} (\S+)$', stack.gateway_metrics(), re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        key = (labels.get("tier", ""), labels.get("reason", ""))
        out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def distinctive_piece(answer: str) -> str:
    """The longest run of plain words in ``answer`` (what survives Markdown rendering as is)."""
    runs = re.findall(r"[A-Za-z0-9][A-Za-z0-9 ,]*[A-Za-z0-9]", answer)
    piece = max(runs, key=len, default="")
    return " ".join(piece[:48].split()) if len(piece) >= 4 else " ".join(answer.split())[:24]


def webui_chat(question: str, answer: str, model: str, title: str, stratum: dict[str, str]) -> dict[str, Any]:
    """A chat as Open WebUI 0.12.4's own page saves one (Chat.svelte: ``history.messages``
    keyed by id, linked by ``parentId``/``childrenIds``, ``currentId`` the last message shown,
    and the same messages as a list)."""
    user_id, reply_id, now = str(uuid.uuid4()), str(uuid.uuid4()), int(time.time())
    user = {"id": user_id, "parentId": None, "childrenIds": [reply_id], "role": "user",
            "content": question, "timestamp": now, "models": [model]}
    reply = {"id": reply_id, "parentId": user_id, "childrenIds": [], "role": "assistant",
             "content": answer, "model": model, "modelName": model, "modelIdx": 0,
             "timestamp": now, "done": True}
    return {"title": title, "models": [model], "params": {},
            "history": {"messages": {user_id: user, reply_id: reply}, "currentId": reply_id},
            "messages": [user, reply], "tags": [], "timestamp": now * 1000, "stratum": stratum}


@pytest.mark.slow
def test_open_webui_shows_the_routed_answer_in_headless_chromium(stack: Stack) -> None:
    """A person's view: the answer the router routed, in Open WebUI's chat page, in a real
    browser. Leaves the screenshot in .artifacts/webui-chat.png."""
    problem = browser.missing_message()
    if problem:
        pytest.fail(problem)
    headers = webui_headers(stack)
    token = headers["Authorization"].removeprefix("Bearer ")
    api = f"{stack.webui_url}/api"

    # The question, through Open WebUI to the gateway; the router's counters say where it went.
    before = decisions(stack)
    r = httpx.post(f"{api}/chat/completions", headers=headers, timeout=300, json={
        "model": "gemma4-auto", "stream": False, "max_tokens": 48, "temperature": 0,
        "messages": [{"role": "user", "content": WEBUI_QUESTION}]})
    r.raise_for_status()
    answer = r.json()["choices"][0]["message"]["content"].strip()
    assert answer, r.json()
    after = decisions(stack)
    routed_to = [k for k in after if after[k] - before.get(k, 0.0) > 0]
    assert len(routed_to) == 1 and after[routed_to[0]] - before.get(routed_to[0], 0.0) == 1, (before, after)
    tier, reason = routed_to[0]
    assert tier in ("fast", "smart") and reason, routed_to

    # Saved as a chat, the way the page saves one, with the router's decision in its title.
    title = f"gemma4-auto: {tier} tier ({reason})"
    r = httpx.post(f"{api}/v1/chats/new", headers=headers, timeout=30, json={
        "chat": webui_chat(WEBUI_QUESTION, answer, "gemma4-auto", title, {"tier": tier, "reason": reason})})
    r.raise_for_status()
    chat_id = r.json()["id"]
    saved = httpx.get(f"{api}/v1/chats/{chat_id}", headers=headers, timeout=30).json()
    assert saved["title"] == title and saved["chat"]["stratum"] == {"tier": tier, "reason": reason}
    # Dismiss the "what's new" dialog an admin sees on a first visit, as its button does.
    version = httpx.get(f"{api}/config", timeout=30).json()["version"]
    httpx.post(f"{api}/v1/users/user/settings/update", headers=headers, timeout=30,
               json={"ui": {"version": version}}).raise_for_status()

    piece = distinctive_piece(answer)
    with browser.Chromium(width=SCREEN[0], height=SCREEN[1]) as chromium:
        chromium.local_storage_on_load(stack.webui_url, {"token": token})
        chromium.navigate(f"{stack.webui_url}/c/{chat_id}")
        text = chromium.wait_for_text([WEBUI_QUESTION, piece, "gemma4-auto", title], timeout_s=120)
        png = chromium.screenshot()
        url = chromium.evaluate("location.href")
    WEBUI_SCREENSHOT.parent.mkdir(exist_ok=True)
    WEBUI_SCREENSHOT.write_bytes(png)

    assert url == f"{stack.webui_url}/c/{chat_id}", url  # not sent to a sign-in page
    for needle in (WEBUI_QUESTION, piece, "gemma4-auto"):
        assert needle in text, (needle, text[:2000])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == SCREEN, (image.format, image.size)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    assert len(colours) >= 64, f"{WEBUI_SCREENSHOT} looks blank: {len(colours)} colours"


# --- memory, throughput, and Ctrl-C (last: it stops the stack) ----------------------------------

@pytest.mark.slow
def test_report_memory_and_throughput(stack: Stack) -> None:
    rss = {}
    for pgid, name in stack.recorded_pgids.items():
        out = subprocess.run(["ps", "-o", "rss=", "-g", str(pgid)], capture_output=True, text=True).stdout
        rss[name] = sum(int(x) for x in out.split()) // 1024
    assert all(v > 0 for v in rss.values()), rss
    report = (f"\nstack: ready in {stack.start_s:.0f}s; resident MB {rss} (total {sum(rss.values())});"
              f" tokens/s fast {[round(x, 1) for x in THROUGHPUT['fast']]},"
              f" smart {[round(x, 1) for x in THROUGHPUT['smart']]}")
    print(report)
    (stack.tmp / "report.txt").write_text(report)
    assert all(x > 0 for x in THROUGHPUT["fast"] + THROUGHPUT["smart"]), THROUGHPUT


@pytest.mark.slow
def test_ctrl_c_stops_every_process(stack: Stack) -> None:
    assert stack.recorded_pgids and all(group_members(g) for g in stack.recorded_pgids)
    rc = stack.interrupt(timeout_s=60)
    assert rc == 130, stack.text()[-2000:]
    assert "==> stopped" in stack.text()
    assert stack.leftovers() == []
    for port in stack.ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, port


# --- failures end with a message that says what to do, and leave nothing behind ------------------

def run_sh(env_extra: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_") or k == "STRATUM_CACHE_DIR"}
    env.update(env_extra)
    return subprocess.run(["bash", str(RUN_SH)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        t0 = time.monotonic()
        r = run_sh({"STRATUM_PORT": str(port), "STRATUM_LOG_DIR": str(tmp_path)})
    assert r.returncode == 1
    assert f"port {port} (gateway) is already in use" in r.stderr
    assert "STRATUM_PORT=<port> make run" in r.stderr
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "pgids").exists() or not (tmp_path / "pgids").read_text().strip()


def test_half_given_external_backends_are_refused() -> None:
    r = run_sh({"STRATUM_FAST_API_BASE": "http://127.0.0.1:9/v1"})
    assert r.returncode == 1
    assert "set both STRATUM_FAST_API_BASE and STRATUM_SMART_API_BASE" in r.stderr


def test_missing_tool_is_named(tmp_path: Path) -> None:
    # A PATH with python3 and the basics but no curl.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    for tool in ("bash", "dirname", "cat", "ps", "setsid", "env", "mkdir", "rm", "tail"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    r = run_sh({"PATH": str(bin_dir)})
    assert r.returncode == 1
    assert "curl is missing" in r.stderr and "apt-get install curl" in r.stderr


def test_missing_chromium_is_named(tmp_path: Path) -> None:
    # Not a skip: `make test` installs Chromium, so its absence is a failure that says how.
    absent = tmp_path / "chromium"
    message = browser.missing_message(absent)
    assert message and str(absent) in message and "scripts/stack/ensure_chromium.sh" in message
    with pytest.raises(browser.BrowserError, match="apt-get install chromium"):
        with browser.Chromium(executable=absent):
            pass
