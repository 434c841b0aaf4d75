"""The label store (a real SQLite file): one label per answer, the newest; the operator's
reading, purging and retention; no prompt text on disk unless asked; decisions kept for
Open WebUI's ratings; and several real processes writing one file at once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_litellm.config import SettingsError, parse_settings
from stratum_litellm.learning.example import Example
from stratum_litellm.learning.labels import Label
from stratum_litellm.learning.store import Decision, Store, StoreError, open_store, store_path
from stratum_litellm.scoring.profile import builtin
from stratum_litellm.scoring.scorer import Scorer
from stratum_litellm.scoring.view import RequestView

DAY = 86_400.0
NOW = time.time()
# A prompt no SQLite page holds by chance.
SECRET = "Quixotic-marmalade-7731 ferments the ülträ-secret 猫 ledger of Wexford"


def label(prompt: str = "What is 2 + 2?", needs: bool = True, source: str = "judge", ref: str | None = None,
          created: float = NOW, weight: float = 1.0, keep_text: bool = True) -> Label:
    return Label(Example.of_prompt(prompt, keep_text), needs, source, weight, ref=ref, tier="fast", score=0.3,
                 profile="default", grade=2 if needs else 5, created=created)


def decision(message_id: str, created: float = NOW, first_tier: bool = True, prompt: str = "hello",
             chat: str | None = "chat-1", user_message: str | None = "u-1") -> Decision:
    return Decision(message_id, "fast" if first_tier else "smart", first_tier, Example.of_prompt(prompt, True), chat,
                    user_message, 0.4, "default", created)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "labels.db")
    yield s
    s.close()


# --------------------------------------------------------------------------- labels


def test_labels_come_back_with_what_was_stored(store: Store) -> None:
    original = label("Prove Fermat's little theorem.", True, "judge", "judge:c1", NOW - 5)
    assert store.add([original]) == 1
    (found,) = store.labels()
    assert found.example.levels == pytest.approx(original.example.levels, abs=1e-6)
    assert found.example.hashes == original.example.hashes
    assert (found.needs_strong, found.source, found.weight, found.ref, found.tier, found.score, found.profile,
            found.grade, found.created) == (True, "judge", 1.0, "judge:c1", "fast", 0.3, "default", 2, NOW - 5)
    assert found.example.text is None  # not kept by default


def test_a_newer_label_of_the_same_answer_replaces_the_older(store: Store) -> None:
    store.add([label("first look", True, "openwebui", "openwebui:m1", NOW - 100)])
    store.add([label("second look", False, "openwebui", "openwebui:m1", NOW - 10, weight=0.5)])
    store.add([label("another answer", True, "openwebui", "openwebui:m2", NOW - 50)])
    found = {l.ref: l for l in store.labels()}
    assert len(found) == 2
    assert found["openwebui:m1"].needs_strong is False and found["openwebui:m1"].weight == 0.5
    assert found["openwebui:m1"].example.hashes == Example.of_prompt("second look").hashes
    assert found["openwebui:m1"].created == NOW - 10
    assert store.stats()["labels"] == 2


def test_labels_without_a_ref_are_each_kept(store: Store) -> None:
    store.add([label("a"), label("a"), label("b")])
    assert len(store.labels()) == 3


def test_adding_nothing_writes_nothing(store: Store) -> None:
    assert store.add([]) == 0 and store.labels() == []


def test_labels_are_listed_oldest_first_and_limit_keeps_the_newest(store: Store) -> None:
    store.add([label(f"p{i}", ref=f"r{i}", created=NOW - 1000 + i * 10) for i in (3, 0, 4, 1, 2)])
    assert [l.ref for l in store.labels()] == ["r0", "r1", "r2", "r3", "r4"]
    assert [l.ref for l in store.labels(limit=2)] == ["r3", "r4"]
    assert [l.ref for l in store.labels(since=NOW - 1000 + 25)] == ["r3", "r4"]


def test_labels_of_some_sources(store: Store) -> None:
    store.add([label(ref="a", source="judge", created=NOW - 3), label(ref="b", source="openwebui", created=NOW - 2),
               label(ref="c", source="file", created=NOW - 1), label(ref="d", source="regeneration", created=NOW)])
    assert [l.ref for l in store.labels(sources=["openwebui", "regeneration"])] == ["b", "d"]
    assert [l.ref for l in store.labels(sources=["judge"], limit=5)] == ["a"]
    assert [l.ref for l in store.labels(sources=["nobody"])] == []
    assert [l.ref for l in store.labels(sources=[])] == ["a", "b", "c", "d"]  # no filter


def test_stats_count_by_source_and_verdict(store: Store) -> None:
    store.add([label(ref="a", source="judge", needs=True, created=NOW - 30),
               label(ref="b", source="judge", needs=True, created=NOW - 20),
               label(ref="c", source="judge", needs=False, created=NOW - 10),
               label(ref="d", source="openwebui", needs=False, created=NOW)])
    store.record([decision("m1"), decision("m2", created=NOW - 5)])
    stats = store.stats()
    assert stats["path"] == str(store.path)
    assert stats["labels"] == 4 and stats["with_text"] == 0 and stats["decisions"] == 2
    assert [(r["source"], r["needs_strong"], r["count"]) for r in stats["by"]] == [
        ("judge", False, 1), ("judge", True, 2), ("openwebui", False, 1)]
    judge_strong = stats["by"][1]
    assert (judge_strong["first"], judge_strong["last"]) == (NOW - 30, NOW - 20)
    assert (stats["decisions_first"], stats["decisions_last"]) == (NOW - 5, NOW)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompts=st.lists(st.text(max_size=300) | st.lists(st.sampled_from(
    ["prove", "the", "theorem", "SELECT * FROM t;", "def f(x):", "3 + 4 = 7", "court", "patient", "x^2", "step", "not",
     "猫", "über"]), max_size=60).map(" ".join), min_size=1, max_size=5))
def test_a_stored_label_scores_as_its_request_did(store: Store, prompts: list[str]) -> None:
    """Labels keep features, not text: read back, they score as the requests did live (the
    stored levels keep six decimals)."""
    store.purge()
    store.add([label(p, ref=f"r{i}", keep_text=False) for i, p in enumerate(prompts)])
    found = {l.ref: l for l in store.labels()}
    for profile in (builtin("default"), builtin("handmade")):
        scorer = Scorer(profile=profile)
        for i, prompt in enumerate(prompts):
            example = found[f"r{i}"].example
            live = scorer.score(RequestView.from_prompt(prompt)).value
            assert profile.value(example.levels, example.hashes) == pytest.approx(live, abs=1e-5)


# --------------------------------------------------------------------------- purging and retention


def filled(store: Store) -> None:
    store.add([label(ref="old-judge", source="judge", created=NOW - 100 * DAY),
               label(ref="old-file", source="file", created=NOW - 100 * DAY),
               label(ref="new-judge", source="judge", created=NOW - 1 * DAY),
               label(ref="new-file", source="file", created=NOW - 1 * DAY)])
    store.record([decision("old", created=NOW - 100 * DAY), decision("new", created=NOW - DAY)])


def test_purge_older_than_removes_old_labels_and_decisions(store: Store) -> None:
    filled(store)
    assert store.purge(older_than_days=30) == 2
    assert sorted(l.ref for l in store.labels()) == ["new-file", "new-judge"]
    assert [d.message_id for d in store.decisions()] == ["new"]


def test_purge_of_one_source_keeps_the_rest_and_the_decisions(store: Store) -> None:
    filled(store)
    assert store.purge(source="judge") == 2
    assert sorted(l.ref for l in store.labels()) == ["new-file", "old-file"]
    assert len(store.decisions()) == 2


def test_purge_older_than_of_one_source(store: Store) -> None:
    filled(store)
    assert store.purge(older_than_days=30, source="file") == 1
    assert sorted(l.ref for l in store.labels()) == ["new-file", "new-judge", "old-judge"]


def test_purge_of_everything(store: Store) -> None:
    filled(store)
    assert store.purge() == 4
    assert store.labels() == [] and store.decisions() == [] and store.stats()["labels"] == 0


def test_expire_removes_kept_text_and_old_decisions(tmp_path: Path) -> None:
    store = Store(tmp_path / "labels.db", keep_text=True, text_retention_days=7, decision_retention_days=30)
    try:
        store.add([label("old text", ref="old", created=NOW - 10 * DAY), label("new text", ref="new", created=NOW - DAY)])
        store.record([decision("ancient", NOW - 40 * DAY, prompt="ancient words"),
                      decision("week-old", NOW - 10 * DAY, prompt="week-old words"),
                      decision("fresh", NOW - DAY, prompt="fresh words")])
        assert store.expire(now=NOW) == (1, 1)
        found = {l.ref: l for l in store.labels()}
        assert found["old"].example.text is None and found["new"].example.text == "new text"
        # The label itself stays, with its features.
        assert found["old"].example.hashes == Example.of_prompt("old text").hashes
        kept = {d.message_id: d for d in store.decisions()}
        assert set(kept) == {"week-old", "fresh"}
        assert kept["week-old"].example.text is None and kept["fresh"].example.text == "fresh words"
        assert store.stats()["with_text"] == 1
        assert store.expire(now=NOW) == (0, 0)  # nothing left to do
    finally:
        store.close()


# --------------------------------------------------------------------------- no text unless asked


def raw_bytes(path: Path) -> bytes:
    """Every byte of the database and its WAL and shared-memory files, those that exist."""
    return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                    if Path(f"{path}{suffix}").exists())


def fill_with_secret(store: Store) -> None:
    store.add([label(SECRET, ref="secret", keep_text=True)])
    store.add([label(SECRET + " again", ref=None, keep_text=True)])
    store.record([decision("m-secret", prompt=SECRET)])


def test_without_keep_text_no_prompt_text_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    store = Store(path, keep_text=False)
    fill_with_secret(store)
    needles = [SECRET.encode("utf-8"), b"Quixotic", b"Wexford", "ülträ".encode("utf-8")]
    while_open = raw_bytes(path)
    store.close()
    after = raw_bytes(path)
    for data in (while_open, after):
        for needle in needles:
            assert needle not in data
    # The labels are there, as features.
    reopened = Store(path)
    try:
        assert reopened.stats()["labels"] == 2 and reopened.stats()["with_text"] == 0
        assert reopened.labels()[0].example.hashes == Example.of_prompt(SECRET).hashes
        assert reopened.decisions()[0].example.text is None
    finally:
        reopened.close()


def test_with_keep_text_the_prompt_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    store = Store(path, keep_text=True)
    fill_with_secret(store)
    assert SECRET.encode("utf-8") in raw_bytes(path)
    assert {l.example.text for l in store.labels()} == {SECRET, SECRET + " again"}
    assert store.decisions()[0].example.text == SECRET
    store.close()
    assert SECRET.encode("utf-8") in raw_bytes(path)


# --------------------------------------------------------------------------- decisions


def test_decisions_are_recorded_and_looked_up_by_message_id(store: Store) -> None:
    assert store.record([decision("m2", NOW - 10, first_tier=False, chat="c", user_message="u"),
                         decision("m1", NOW - 20, prompt="Prove it.")]) == 2
    assert store.record([]) == 0
    assert [d.message_id for d in store.decisions()] == ["m1", "m2"]  # oldest first
    (m2,) = store.decisions(["m2", "unknown"])
    assert (m2.tier, m2.first_tier, m2.chat_id, m2.user_message_id, m2.score, m2.profile, m2.created) == \
        ("smart", False, "c", "u", 0.4, "default", NOW - 10)
    assert store.decisions(["m1"])[0].example.hashes == Example.of_prompt("Prove it.").hashes
    assert store.decisions([]) == []
    # Recorded again (the same answer): replaced, not doubled.
    store.record([decision("m1", NOW - 5, first_tier=False)])
    assert len(store.decisions()) == 2 and store.decisions(["m1"])[0].tier == "smart"


def test_many_decisions_are_looked_up_at_once(store: Store) -> None:
    store.record([decision(f"m{i}", NOW - 2000 + i) for i in range(1200)])
    wanted = [f"m{i}" for i in range(0, 1200, 1)] + ["missing"]
    found = store.decisions(wanted)
    assert [d.message_id for d in found] == [f"m{i}" for i in range(1200)]


# --------------------------------------------------------------------------- several processes

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from stratum_litellm.learning.example import Example
    from stratum_litellm.learning.labels import Label
    from stratum_litellm.learning.store import Store

    path, worker, count, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    examples = [Example.of_prompt(f"worker {worker} asks question number {i}") for i in range(count)]
    Path(f"{go}.ready{worker}").touch()
    while not go.exists():
        time.sleep(0.001)
    store = Store(path)
    for i, example in enumerate(examples):  # one transaction each: as many chances to collide
        store.add([Label(example, i % 2 == 0, "judge", ref=f"judge:w{worker}-{i}", created=time.time())])
    store.close()
    print("done", worker)
""")

OPENER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from stratum_litellm.learning.store import Store, StoreError

    folder, worker, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    for r in range(rounds):
        (folder / f"ready-{r}-{worker}").touch()
        while not (folder / f"go-{r}").exists():
            time.sleep(0.0005)
        try:
            Store(folder / f"store-{r}.db").close()  # a store no process has created yet
        except StoreError as exc:
            print(f"round {r}: {exc}", flush=True)
""")


def run_together(tmp_path: Path, script: str, args: list[list[str]], rounds: int = 1,
                 ready: str = "ready-{round}-{worker}", go: str = "go-{round}") -> list[tuple[int, str, str]]:
    """Start one process per ``args``, then release them together, round by round (each
    waits for the file ``go`` of its round once it has touched its ``ready`` file)."""
    file = tmp_path / "script.py"
    file.write_text(script)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    processes = [subprocess.Popen([sys.executable, str(file), *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for a in args]
    try:
        for r in range(rounds):
            deadline = time.monotonic() + 60
            while not all((tmp_path / ready.format(round=r, worker=w)).exists() for w in range(len(args))):
                assert time.monotonic() < deadline, "the processes did not get ready"
                if any(p.poll() is not None for p in processes):
                    break  # one ended early: its output says why
                time.sleep(0.002)
            (tmp_path / go.format(round=r)).touch()
        found = [(p.returncode, *p.communicate(timeout=120)) for p in processes]
        return [(p.returncode, out, err) for p, (_, out, err) in zip(processes, found)]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


def test_several_processes_writing_one_store_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    Store(path).close()  # the gateway opened it first
    workers, count = 4, 200
    results = run_together(tmp_path, WRITER, [[str(path), str(w), str(count), str(tmp_path / "go-0")]
                                              for w in range(workers)], ready="go-0.ready{worker}")
    for code, out, err in results:
        assert "database is locked" not in err
        assert code == 0, err
        assert out.startswith("done")
    store = Store(path)
    try:
        refs = {l.ref for l in store.labels()}
        assert refs == {f"judge:w{w}-{i}" for w in range(workers) for i in range(count)}
        assert store.stats()["labels"] == workers * count
    finally:
        store.close()


def test_several_processes_opening_a_new_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Gateway workers starting together each open the store (learning.store.path) before
    any has created it. Each must wait its turn (the busy timeout), not fail: a worker that
    cannot open the store does not start."""
    workers, rounds = 4, 100
    results = run_together(tmp_path, OPENER, [[str(tmp_path), str(w), str(rounds)] for w in range(workers)], rounds)
    for code, out, err in results:
        assert code == 0, err
        assert out == "", out  # e.g. "round 3: cannot open the label store .../store-3.db: database is locked"


# --------------------------------------------------------------------------- where it lives


def test_a_store_on_an_unwritable_path_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = blocker / "labels.db"
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(path) in str(caught.value)


def test_a_store_in_a_folder_that_cannot_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = blocker / "deeper" / "labels.db"
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(path) in str(caught.value)


def test_a_file_that_is_not_a_store_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    path.write_bytes(b"this is not an SQLite database, just text " * 100)
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert str(path) in str(caught.value)


def test_the_store_path_is_read_from_the_settings_files_folder(tmp_path: Path) -> None:
    config = tmp_path / "gateway" / "litellm_config.yaml"
    config.parent.mkdir()
    config.write_text("")
    settings = parse_settings({"learning": {"store": {"path": "data/labels.db"}}})
    assert store_path(settings, str(config)) == config.parent.resolve() / "data" / "labels.db"
    absolute = parse_settings({"learning": {"store": {"path": str(tmp_path / "abs.db")}}})
    assert store_path(absolute, str(config)) == tmp_path / "abs.db"
    opened = open_store(settings, str(config))
    try:
        assert (config.parent / "data" / "labels.db").is_file()
    finally:
        opened.close()


def test_a_bad_store_path_in_the_settings_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    settings = parse_settings({"learning": {"store": {"path": str(tmp_path / "a-file" / "labels.db")}}})
    with pytest.raises(SettingsError) as caught:
        open_store(settings, "litellm_config.yaml")
    assert "learning.store.path" in str(caught.value) and "a-file" in str(caught.value)
