"""`stratum labels`: the operator's view of the label store (stats, export), purging, and
importing Open WebUI's ratings, run in-process on real store files.

Open WebUI itself is not started here: a small local HTTP server answers its export
endpoint with the JSON Open WebUI gives (a stand-in, served over real HTTP; Open WebUI in
person belongs to the e2e tests)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stratum_litellm.cli.main import main
from stratum_litellm.learning.example import Example
from stratum_litellm.learning.labels import Label
from stratum_litellm.learning.openwebui import EXPORT_PATH
from stratum_litellm.learning.store import Decision, Store

DAY = 86_400.0
SECRET = "Quixotic-marmalade-7731 ledger"


def config(tmp_path: Path, keep_text: bool = False, feedback: bool = True) -> Path:
    path = tmp_path / "gateway" / "litellm_config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stratum:\n  learning:\n    store:\n      path: labels.db\n"
                    f"      keep_text: {'true' if keep_text else 'false'}\n"
                    f"    feedback:\n      enabled: {'true' if feedback else 'false'}\n", encoding="utf-8")
    return path


def filled(tmp_path: Path, keep_text: bool = False) -> Path:
    cfg = config(tmp_path, keep_text)
    store = Store(cfg.parent / "labels.db", keep_text=keep_text)
    now = time.time()
    store.add([Label(Example.of_prompt(SECRET, True), True, "judge", ref="judge:1", created=now - 100 * DAY, grade=2),
               Label(Example.of_prompt("hello", True), False, "judge", ref="judge:2", created=now - DAY, grade=5),
               Label(Example.of_prompt("thanks", True), False, "openwebui", ref="openwebui:m0", created=now - DAY)])
    store.record([Decision("m9", "fast", True, Example.of_prompt("hi"), "c", "u", 0.1, "default", now - 100 * DAY)])
    store.close()
    return cfg


def test_stats_show_labels_by_source_and_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = filled(tmp_path)
    assert main(["labels", "stats", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"label store {cfg.parent / 'labels.db'}: 3 labels, 0 with text" in out
    assert any(line.split()[:4] == ["judge", "needs", "strong", "1"] for line in out.splitlines())
    assert any(line.split()[:4] == ["judge", "first", "enough", "1"] for line in out.splitlines())
    assert any(line.split()[:4] == ["openwebui", "first", "enough", "1"] for line in out.splitlines())
    assert "decisions kept for Open WebUI's ratings: 1" in out


def test_a_missing_store_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path)
    assert main(["labels", "stats", "--config", str(cfg)]) == 2
    assert f"no label store at {cfg.parent / 'labels.db'}" in capsys.readouterr().err
    assert not (cfg.parent / "labels.db").exists()  # looking does not create one


@pytest.mark.parametrize("keep_text", [False, True])
def test_export_writes_every_label_as_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 keep_text: bool) -> None:
    cfg = filled(tmp_path, keep_text)
    out_file = tmp_path / "export.jsonl"
    assert main(["labels", "export", "--config", str(cfg), "--out", str(out_file)]) == 0
    assert f"exported 3 labels to {out_file}" in capsys.readouterr().err
    records = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert [r["ref"] for r in records] == ["judge:1", "judge:2", "openwebui:m0"]  # oldest first
    assert [r["needs_strong"] for r in records] == [True, False, False]
    assert records[0]["features"]["hashes"] == list(Example.of_prompt(SECRET).hashes)
    assert ("prompt" in records[0]) is keep_text
    if keep_text:
        assert records[0]["prompt"] == SECRET
    else:
        assert SECRET not in out_file.read_text(encoding="utf-8")


def test_export_of_one_source_to_standard_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = filled(tmp_path)
    assert main(["labels", "export", "--config", str(cfg), "--source", "openwebui"]) == 0
    out = capsys.readouterr().out
    assert [json.loads(line)["ref"] for line in out.splitlines()] == ["openwebui:m0"]


def test_purge_needs_to_be_told_what(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = filled(tmp_path)
    assert main(["labels", "purge", "--config", str(cfg)]) == 1
    assert "--older-than DAYS, --source SOURCE or --all" in capsys.readouterr().err
    store = Store(cfg.parent / "labels.db")
    try:
        assert store.stats()["labels"] == 3
    finally:
        store.close()


@pytest.mark.parametrize("args, left, decisions", [
    (["--older-than", "30"], {"judge:2", "openwebui:m0"}, 0),
    (["--source", "judge"], {"openwebui:m0"}, 1),
    (["--all"], set(), 0),
])
def test_purge(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], left: set[str],
               decisions: int) -> None:
    cfg = filled(tmp_path)
    assert main(["labels", "purge", "--config", str(cfg), *args]) == 0
    assert f"deleted {3 - len(left)} labels" in capsys.readouterr().out
    store = Store(cfg.parent / "labels.db")
    try:
        assert {l.ref for l in store.labels()} == left
        assert len(store.decisions()) == decisions
    finally:
        store.close()


# --------------------------------------------------------------------------- import-openwebui


class OpenWebUI:
    """Answers the export endpoint (with an admin's key) like Open WebUI does."""

    def __init__(self, feedbacks: list[dict[str, Any]], key: str = "admin-key") -> None:
        outer = self
        self.feedbacks, self.key, self.requests = feedbacks, key, []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                outer.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {outer.key}":
                    self.send_response(401)
                    self.end_headers()
                    return
                if self.path != EXPORT_PATH:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(outer.feedbacks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def webui() -> Iterator[OpenWebUI]:
    now = time.time()
    server = OpenWebUI([
        {"type": "rating", "data": {"rating": -1}, "meta": {"message_id": "down", "chat_id": "c1"}, "updated_at": now},
        {"type": "rating", "data": {"rating": 1}, "meta": {"message_id": "up", "chat_id": "c2"}, "updated_at": now},
        {"type": "rating", "data": {"rating": -1}, "meta": {"message_id": "smart", "chat_id": "c3"}, "updated_at": now},
        {"type": "rating", "data": {"rating": 1}, "meta": {"message_id": "gone", "chat_id": "c4"}, "updated_at": now},
    ])
    yield server
    server.close()


def decisions_for_import(cfg: Path) -> None:
    now = time.time()
    store = Store(cfg.parent / "labels.db")
    store.record([
        Decision("down", "fast", True, Example.of_prompt("Prove it."), "c1", "u1", 0.3, "default", now - 60),
        Decision("up", "fast", True, Example.of_prompt("hello"), "c2", "u2", 0.1, "default", now - 60),
        Decision("smart", "smart", False, Example.of_prompt("Prove more."), "c3", "u3", 0.9, "default", now - 60),
        Decision("regen-old", "fast", True, Example.of_prompt("Explain."), "c5", "u5", 0.4, "default", now - 120),
        Decision("regen-new", "smart", False, Example.of_prompt("Explain."), "c5", "u5", 0.4, "default", now - 110),
    ])
    store.close()


def test_import_openwebui_joins_ratings_to_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     webui: OpenWebUI) -> None:
    cfg = config(tmp_path)
    decisions_for_import(cfg)
    code = main(["labels", "import-openwebui", "--config", str(cfg), "--url", webui.url + "/", "--key", "admin-key"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert webui.requests == [(EXPORT_PATH, "Bearer admin-key")]
    assert "4 ratings read" in out and "2 labels from ratings of first-tier answers" in out
    assert "1 from regenerated first-tier answers (weight 0.5)" in out
    assert "not joined: 1" in out and "no label: 1" in out
    store = Store(cfg.parent / "labels.db")
    try:
        found = {l.ref: (l.needs_strong, l.source, l.weight) for l in store.labels()}
    finally:
        store.close()
    assert found == {"openwebui:down": (True, "openwebui", 1.0), "openwebui:up": (False, "openwebui", 1.0),
                     "openwebui:regen-old": (True, "regeneration", 0.5)}
    # Imported again: the same labels, not twice as many.
    assert main(["labels", "import-openwebui", "--config", str(cfg), "--url", webui.url, "--key", "admin-key"]) == 0
    store = Store(cfg.parent / "labels.db")
    try:
        assert store.stats()["labels"] == 3
    finally:
        store.close()


def test_import_openwebui_says_when_the_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       webui: OpenWebUI) -> None:
    cfg = config(tmp_path)
    assert main(["labels", "import-openwebui", "--config", str(cfg), "--url", webui.url, "--key", "wrong"]) == 1
    err = capsys.readouterr().err
    assert "refused the key (401)" in err and "admin" in err


def test_import_openwebui_needs_a_url_and_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENWEBUI_URL", raising=False)
    monkeypatch.delenv("OPENWEBUI_API_KEY", raising=False)
    assert main(["labels", "import-openwebui", "--config", str(config(tmp_path)), "--url", "http://x"]) == 1
    assert "give --url and --key" in capsys.readouterr().err


def test_import_openwebui_notes_when_decisions_are_not_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                webui: OpenWebUI) -> None:
    cfg = config(tmp_path, feedback=False)
    assert main(["labels", "import-openwebui", "--config", str(cfg), "--url", webui.url, "--key", "admin-key"]) == 0
    captured = capsys.readouterr()
    assert "not joined: 4" in captured.out
    assert "learning.feedback.enabled is off" in captured.err
