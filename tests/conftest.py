"""Shared fixtures: real backends started once per test session."""

from __future__ import annotations

import os
from typing import Iterator

# No network here: LiteLLM must use the cost map it ships instead of fetching one at import
# (the fetch retries from a thread that logs while the import is still running, which can
# deadlock LiteLLM's lazily imported logging filter).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import sys
from pathlib import Path

import pytest

# The launchers and helpers every kind of test shares live in tests/support.
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

from backends import LlamaServer, StubBackend  # noqa: E402

# A greeting and a long, hard question in plain prose: the two ends every test relies on.
SIMPLE_PROMPT = "hi there! thanks"
COMPLEX_PROMPT = (
    "Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible "
    "by 24, then analyse step by step why the argument fails for composite numbers, compare it with a "
    "proof by modular arithmetic, and explain under which additional constraints the statement could be "
    "generalised to higher powers without assuming anything beyond elementary number theory."
)


@pytest.fixture(scope="session")
def llama_fast() -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma4-fast", slots=2) as server:
        yield server


@pytest.fixture(scope="session")
def llama_smart() -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma4-smart", slots=2) as server:
        yield server


@pytest.fixture()
def stub_fast() -> Iterator[StubBackend]:
    with StubBackend(name="fast-stub") as stub:
        yield stub


@pytest.fixture()
def stub_smart() -> Iterator[StubBackend]:
    with StubBackend(name="smart-stub") as stub:
        yield stub
