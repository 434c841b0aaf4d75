"""The server launchers against the REAL llama-server + SmolLM2, and the stub's injected faults.

Missing cached artifacts make these tests fail (never skip): `make test` runs
scripts/stack/build_llama_server.sh first, so a missing binary or model is a broken set-up,
not an option.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from process import ProcessError
from servers import LlamaServer, StubBackend

ALIAS = "smollm2-test"
PROMPT = [{"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def llama(llama_build: tuple[Path, Path]) -> Iterator[LlamaServer]:
    with LlamaServer(llama_build[1], alias=ALIAS, slots=2) as server:
        yield server


@pytest.fixture(scope="module")
def stub() -> Iterator[StubBackend]:
    with StubBackend("fast-stub") as s:
        yield s


@pytest.fixture
def fresh_stub(stub: StubBackend) -> StubBackend:
    stub.set_behaviour(ttft_ms=0, token_interval_ms=0, tokens=8, status=200, fail=False)
    stub.clear_requests()
    return stub


def client(api_base: str) -> openai.OpenAI:
    # No retries: a retried 500 or stall would hide what the backend really did.
    return openai.OpenAI(base_url=api_base, api_key="sk-unused", max_retries=0, timeout=60)


def test_cached_artifacts_present(llama_build: tuple[Path, Path]) -> None:
    binary, model = llama_build
    assert binary.name == "llama-server"
    assert model.suffix == ".gguf" and model.stat().st_size > 50_000_000


def test_llama_chat_non_streaming(llama: LlamaServer) -> None:
    r = client(llama.api_base).chat.completions.create(
        model=ALIAS, messages=PROMPT, max_tokens=24, temperature=0)
    assert r.choices[0].message.content and r.choices[0].message.content.strip()
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 24


def test_llama_chat_streaming_with_usage(llama: LlamaServer) -> None:
    stream = client(llama.api_base).chat.completions.create(
        model=ALIAS, messages=PROMPT, max_tokens=16, temperature=0, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and 0 < usage[-1].completion_tokens <= 16


def test_llama_models_lists_alias(llama: LlamaServer) -> None:
    ids = [m.id for m in client(llama.api_base).models.list()]
    assert ALIAS in ids


def test_llama_metrics_and_slots(llama: LlamaServer) -> None:
    metrics = httpx.get(f"{llama.base_url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "llamacpp:requests_processing" in metrics.text
    slots = httpx.get(f"{llama.base_url}/slots", timeout=10)
    assert slots.status_code == 200
    assert len(slots.json()) == 2


def test_llama_server_bad_model_reports_log(llama_build: tuple[Path, Path], tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(ProcessError, match="exited with code") as info:
        with LlamaServer(bogus, ready_timeout=30):
            pass
    assert "log tail" in str(info.value)


def test_stub_reply_names_backend(fresh_stub: StubBackend) -> None:
    r = client(fresh_stub.api_base).chat.completions.create(model="fast", messages=PROMPT)
    assert r.choices[0].message.content and "fast-stub" in r.choices[0].message.content
    assert r.usage is not None and r.usage.completion_tokens == 8
    assert fresh_stub.requests() == [{"model": "fast", "messages": 1}]


def test_stub_streaming_has_usage_and_done(fresh_stub: StubBackend) -> None:
    with httpx.stream("POST", f"{fresh_stub.api_base}/chat/completions", timeout=10,
                      json={"model": "fast", "messages": PROMPT, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert '"usage"' in lines[-2]


def test_stub_stall_is_a_real_delay(fresh_stub: StubBackend) -> None:
    fresh_stub.set_behaviour(ttft_ms=1500)
    t0 = time.monotonic()
    stream = client(fresh_stub.api_base).chat.completions.create(
        model="fast", messages=PROMPT, stream=True)
    first = next(c for c in stream if c.choices and c.choices[0].delta.content)
    ttft = time.monotonic() - t0
    assert first.choices[0].delta.content == "fast-stub"
    assert 1.4 <= ttft < 5, ttft
    list(stream)


def test_stub_fail_gives_http_500(fresh_stub: StubBackend) -> None:
    fresh_stub.set_behaviour(fail=True)
    r = httpx.post(f"{fresh_stub.api_base}/chat/completions", timeout=10,
                   json={"model": "fast", "messages": PROMPT})
    assert r.status_code == 500
    assert "injected failure" in r.json()["error"]["message"]
    with pytest.raises(openai.InternalServerError):
        client(fresh_stub.api_base).chat.completions.create(model="fast", messages=PROMPT)
    assert len(fresh_stub.requests()) == 2
