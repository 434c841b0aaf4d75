"""Shared fixtures (real model servers started once per test session) and the markers each
test gets from its folder."""

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
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "support"))

from redis_server import BINARY as REDIS_SERVER_BINARY, MISSING as REDIS_SERVER_MISSING, RedisServer  # noqa: E402
from servers import ArtifactMissing, LlamaServer, StubBackend, llama_server_binary, smollm2_gguf  # noqa: E402

# A greeting and a long, hard question in plain prose: the two ends every test relies on.
SIMPLE_PROMPT = "hi there! thanks"
COMPLEX_PROMPT = (
    "Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible "
    "by 24, then analyse step by step why the argument fails for composite numbers, compare it with a "
    "proof by modular arithmetic, and explain under which additional constraints the statement could be "
    "generalised to higher powers without assuming anything beyond elementary number theory."
)

KINDS = ("unit", "integration", "e2e")  # the folders under tests/, each a marker of the same name

# With TEST_WORKERS set, `make test` runs the modules on parallel workers, a whole module
# per worker (`--dist loadfile`), handed out in collection order: the longest go first so
# that the workers end together. The stack's comes first of all: on a fresh machine its set-up
# (vLLM, Open WebUI, Gemma) takes minutes of mostly download time. The order follows
# `--durations` (docs/stack.md, "Where make test's time goes"); the rest keep theirs.
LONGEST_FIRST = ("e2e/test_stack.py", "e2e/test_stop_e2e.py", "e2e/test_shared_state_e2e.py",
                 "e2e/test_gateway_e2e.py", "e2e/test_learning_e2e.py", "e2e/test_fleet_prometheus.py",
                 "integration/test_package.py", "e2e/test_fit_e2e.py", "e2e/test_tier_health_e2e.py",
                 "integration/test_backend_signals.py", "e2e/test_ladder_e2e.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if TESTS in path.parents and path.relative_to(TESTS).parts[0] in KINDS:
            item.add_marker(path.relative_to(TESTS).parts[0])
        # Whatever starts llama-server asks for the llama_build fixture: that alone marks it.
        if "llama_build" in getattr(item, "fixturenames", ()):
            item.add_marker("llama_server")
    items.sort(key=_rank)  # stable: each module's own order stays


def _rank(item: pytest.Item) -> int:
    path = Path(str(item.path))
    where = path.relative_to(TESTS).as_posix() if TESTS in path.parents else ""
    return LONGEST_FIRST.index(where) if where in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.fixture(scope="session")
def llama_build() -> tuple[Path, Path]:
    """The built llama-server and the SmolLM2 GGUF. Missing, they fail the test (never a
    skip): `make test` builds them first, so their absence is a broken set-up."""
    try:
        return llama_server_binary(), smollm2_gguf()
    except ArtifactMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def llama_fast(llama_build: tuple[Path, Path]) -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma4-fast", slots=2) as server:
        yield server


@pytest.fixture(scope="session")
def llama_smart(llama_build: tuple[Path, Path]) -> Iterator[LlamaServer]:
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


@pytest.fixture(scope="session")
def fake_gpu(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment that gives a process a test starts (a gateway) one fake GPU,
    ``nvml_fake.HALF_FREE``, read through the real pynvml from the fake NVML library of
    tests/support/nvml_fake, whether the machine has a GPU or not. Shared by the session, so
    it never changes: a test that changes its GPU calls ``nvml_fake.for_a_process`` itself.
    Merge it into an env of your own (``{**fake_gpu, ...}``), never edit it."""
    import nvml_fake  # imports pynvml: only for the tests that ask

    _, env = nvml_fake.for_a_process(tmp_path_factory.mktemp("nvml") / "nvml.state")
    return env


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session. Missing, it fails the test (never a skip):
    `make test` installs it first (`make redis`), so its absence is a broken set-up."""
    if not Path(REDIS_SERVER_BINARY).is_file():
        pytest.fail(REDIS_SERVER_MISSING, pytrace=False)
    with RedisServer() as server:
        yield server


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis, emptied (and running, not paused) before each test."""
    redis_server.resume()
    if not redis_server.running():  # an earlier test killed it
        redis_server.restart()
    redis_server.flush()
    yield redis_server.url
