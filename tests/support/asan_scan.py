"""Run by tests/unit/scoring/test_c_parts.py under AddressSanitizer and UBSan: loads sanitised
builds of the C scan engine and measurements (paths in argv[1] and argv[2]) and compares them
with the Python ones on random specs and texts. Any out-of-bounds read or write, use after free
or undefined behaviour aborts the process with the sanitiser's report."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from stratum_litellm.scoring import measure  # noqa: E402
from stratum_litellm.scoring.scan import PyScanner, View  # noqa: E402


def load(name: str, path: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"stratum_litellm.scoring.{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # The sanitised measurements find the sanitised engine (and its API) under the engine's name.
    sys.modules[f"stratum_litellm.scoring.{name}"] = module
    spec.loader.exec_module(module)
    return module


engine = load("_bytescan", sys.argv[1])
measurer_module = load("_measure", sys.argv[2])
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
rng = random.Random(3)
ALPHABET = b"ab \n\x00.\xe2\x80\x99{};=+_`I0123SELECT FROM statement step (ii)"


def text(limit: int) -> bytes:
    if rng.random() < 0.5:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, limit)))
    return bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, limit)))


def same(a: tuple, b: tuple) -> bool:
    return tuple(a) == tuple(b)


scorer_c, scorer_py = engine.Scanner(**measure._SCANNER_SPEC), PyScanner(**measure._SCANNER_SPEC)
for _ in range(rounds * 4):
    data = text(400)
    assert same(scorer_c.scan(data), scorer_py.scan(data)), data

# The measurements, on the same kind of texts read as UTF-8 (invalid bytes replaced).
measurer = measurer_module.Measurer(scorer_c, measure._LAYOUT)
for _ in range(rounds * 4):
    words = text(400).decode("utf-8", "replace")
    assert measurer.measure(words) == measure.measure_python(words), words

for _ in range(rounds):
    views = []
    for _ in range(rng.randint(1, 4)):
        views.append(View(
            table=None if rng.random() < 0.5 else bytes(rng.randrange(256) for _ in range(256)),
            delete=bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 4))),
            limit=None if rng.random() < 0.6 else rng.randint(0, 50),
            needles=tuple(bytes(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(0, 5))),
            classes=tuple(bytes(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3))) for _ in range(rng.randint(0, 2))),
        ))
    words = sorted({bytes(rng.choice(b"ab.\xe2") for _ in range(rng.randint(1, 9))) for _ in range(rng.randint(0, 10))})
    vocabulary = {w: tuple(rng.randrange(3) for _ in range(rng.randint(0, 2))) for w in words}
    phrases = [(rng.sample(words, min(len(words), rng.randint(1, 3))), [rng.randrange(3)]) for _ in range(rng.randint(0, 3))] if words else []
    kwargs = {"views": views, "vocabulary": vocabulary, "tags": 3, "words_view": rng.randint(-1, len(views) - 1),
              "distinct_view": rng.randint(-1, len(views) - 1), "phrases": phrases}
    c, p = engine.Scanner(**kwargs), PyScanner(**kwargs)
    for _ in range(4):
        data = text(120)
        assert same(c.scan(data), p.scan(data)), (kwargs, data)
print("clean")
