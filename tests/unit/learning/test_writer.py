"""The store's writer thread in the gateway: labels and decisions handed over with their
request bodies are written with the features made from those bodies; it measures how well
the profile in use ranks the newest live labels; a full queue drops (counted), never waits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stratum_litellm.learning import writer as writer_module
from stratum_litellm.learning.example import Example
from stratum_litellm.learning.labels import Label
from stratum_litellm.learning.quality import auroc
from stratum_litellm.learning.settings import AgreementSettings
from stratum_litellm.learning.store import Decision, Store
from stratum_litellm.learning.writer import Agreement, Pending, StoreWriter
from stratum_litellm.scoring.profile import builtin

HARD = ("Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible by 24, "
        "then analyse step by step why the argument fails for composite numbers and compare it with a proof by "
        "modular arithmetic.")
EASY = "hi there! thanks"
SECRET = "Quixotic-marmalade-7731 ledger"


def body(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}], "tools": None}


def judged(ref: str, needs: bool, source: str = "judge", created: float | None = None) -> Label:
    """A label as the sampler hands it over: no features yet."""
    return Label(Example.empty(), needs, source, ref=ref, tier="fast", score=0.5, profile="default", grade=2 if needs else 5,
                 created=created if created is not None else time.time())


class Harness:
    def __init__(self, path: Path, keep_text: bool = False, window: int = 500, min_labels: int = 50) -> None:
        self.path = path
        self.keep_text = keep_text
        self.agreement_settings = AgreementSettings(window=window, min_labels=min_labels)
        self.dropped: list[str] = []
        self.agreements: list[Agreement] = []
        self.writer = StoreWriter(lambda: Store(self.path, self.keep_text), lambda: builtin("default"),
                                  lambda: self.agreement_settings, lambda: self.keep_text,
                                  on_dropped=self.dropped.append, on_agreement=self.agreements.append)

    def store(self) -> Store:
        return Store(self.path, keep_text=self.keep_text)


@pytest.fixture()
def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path / "labels.db")
    yield h
    h.writer.stop()


def test_labels_and_decisions_are_written_with_features_made_from_their_bodies(harness: Harness) -> None:
    harness.writer.start()
    decision = Decision("m1", "fast", True, Example.empty(), "chat-1", "u-1", 0.2, "default", time.time())
    assert harness.writer.put(Pending(body(HARD), label=judged("judge:c1", True)))
    assert harness.writer.put(Pending(body(EASY), decision=decision))
    assert harness.writer.flush()
    assert harness.writer.written == 2
    store = harness.store()
    try:
        (label,) = store.labels()
        expected = Example.of_request(body(HARD))
        assert label.example.hashes == expected.hashes
        assert label.example.levels == pytest.approx(expected.levels, abs=1e-6)
        assert (label.ref, label.needs_strong, label.source, label.grade) == ("judge:c1", True, "judge", 2)
        (found,) = store.decisions()
        assert found.message_id == "m1" and found.example.hashes == Example.of_request(body(EASY)).hashes
        assert found.example.text is None and label.example.text is None
    finally:
        store.close()
    assert harness.dropped == []


def test_text_is_written_only_when_kept(tmp_path: Path) -> None:
    for keep in (False, True):
        h = Harness(tmp_path / f"keep-{keep}.db", keep_text=keep)
        h.writer.start()
        h.writer.put(Pending(body(SECRET), label=judged("judge:s", True)))
        h.writer.stop()  # writes what is queued, then stops
        store = h.store()
        try:
            assert store.labels()[0].example.text == (SECRET if keep else None)
        finally:
            store.close()


def test_stop_writes_what_is_queued(harness: Harness) -> None:
    harness.writer.start()
    for i in range(450):  # more than one batch
        harness.writer.put(Pending(body(f"question {i}"), label=judged(f"judge:{i}", i % 2 == 0)))
    harness.writer.stop()
    store = harness.store()
    try:
        assert store.stats()["labels"] == 450
    finally:
        store.close()


def test_a_full_queue_drops_and_reports_store_busy(harness: Harness) -> None:
    # Not started: nothing takes items off the queue.
    for i in range(writer_module._QUEUE):
        assert harness.writer.put(Pending(body("x"), label=judged(f"judge:{i}", True)))
    started = time.monotonic()
    assert harness.writer.put(Pending(body("x"), label=judged("judge:one-too-many", True))) is False
    assert time.monotonic() - started < 0.1  # it never waits
    assert harness.dropped == ["store_busy"]
    # Once started, it writes what it kept.
    harness.writer.start()
    assert harness.writer.flush()
    store = harness.store()
    try:
        assert store.stats()["labels"] == writer_module._QUEUE
    finally:
        store.close()


# --------------------------------------------------------------------------- agreement


def add(store: Store, count: int, prompt: str, needs: bool, source: str, start: float) -> None:
    store.add([Label(Example.of_prompt(f"{prompt} ({i})"), needs, source, ref=f"{source}:{prompt[:8]}:{needs}:{start}:{i}",
                     created=start + i) for i in range(count)])


def test_agreement_is_measured_on_the_newest_live_labels(harness: Harness) -> None:
    harness.agreement_settings = AgreementSettings(window=40, min_labels=20)
    store = harness.store()
    try:
        now = time.time()
        # Older live labels the default profile ranks backwards, beyond the window...
        add(store, 20, HARD, False, "judge", now - 10_000)
        add(store, 20, EASY, True, "openwebui", now - 9_000)
        # ... file labels (not the deployment's traffic) that are backwards too ...
        add(store, 30, HARD, False, "file", now - 100)
        # ... and the newest 40 live ones, which it ranks right.
        add(store, 10, HARD, True, "judge", now - 50)
        add(store, 10, EASY, False, "judge", now - 40)
        add(store, 10, HARD, True, "regeneration", now - 30)
        add(store, 10, EASY, False, "openwebui", now - 20)
        agreement = harness.writer.measure(store)
        assert agreement.auroc == 1.0 and agreement.labels == 40 and agreement.profile == "default"
        assert agreement.counts == {("judge", "first_enough"): 30, ("judge", "needs_strong"): 10,
                                    ("openwebui", "first_enough"): 10, ("openwebui", "needs_strong"): 20,
                                    ("regeneration", "needs_strong"): 10, ("file", "first_enough"): 30}
        # A wider window takes in the older, backward ones.
        harness.agreement_settings = AgreementSettings(window=80, min_labels=20)
        wider = harness.writer.measure(store)
        assert wider.labels == 80 and wider.auroc is not None and wider.auroc < 0.75
        profile = builtin("default")
        live = store.labels(sources=["judge", "openwebui", "regeneration"])
        assert wider.auroc == pytest.approx(auroc([profile.logit(l.example.levels, l.example.hashes) for l in live],
                                                  [l.needs_strong for l in live]))
    finally:
        store.close()


def test_no_agreement_without_enough_labels_of_both_verdicts(harness: Harness) -> None:
    harness.agreement_settings = AgreementSettings(window=500, min_labels=20)
    store = harness.store()
    try:
        now = time.time()
        add(store, 19, HARD, True, "judge", now - 100)
        add(store, 100, EASY, False, "file", now - 50)  # not live: they do not count
        assert harness.writer.measure(store).auroc is None  # 19 < 20
        add(store, 30, HARD, True, "openwebui", now - 40)
        found = harness.writer.measure(store)
        assert found.auroc is None and found.labels == 49  # one verdict only
        add(store, 1, EASY, False, "judge", now - 30)
        assert harness.writer.measure(store).auroc == 1.0
    finally:
        store.close()


def test_the_thread_reports_its_measure(harness: Harness) -> None:
    harness.agreement_settings = AgreementSettings(window=500, min_labels=2)
    harness.writer.put(Pending(body(HARD), label=judged("judge:a", True)))
    harness.writer.put(Pending(body(EASY), label=judged("judge:b", False)))
    harness.writer.start()  # its first batch holds both, and it measures after writing it
    assert harness.writer.flush()
    deadline = time.monotonic() + 10
    while not any(a.labels == 2 for a in harness.agreements) and time.monotonic() < deadline:
        time.sleep(0.02)
    latest = harness.agreements[-1]
    assert latest.labels == 2 and latest.auroc == 1.0 and harness.writer.agreement == latest
    assert latest.counts == {("judge", "needs_strong"): 1, ("judge", "first_enough"): 1}
