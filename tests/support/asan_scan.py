"""Run by tests/unit/scoring/test_c_parts.py under AddressSanitizer and UBSan: loads sanitised
builds of the C scan engine and measurements (paths in argv[1] and argv[2]; argv[3] the number
of rounds) and, when argv[4] names one, of the learned part's features (_text), and compares
them with the Python ones on random specs, texts and weight tables. Any out-of-bounds read or
write, use after free or undefined behaviour aborts the process with the sanitiser's report."""

from __future__ import annotations

import importlib.util
import random
import struct
import sys
from array import array
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


def check_features(features, rounds: int) -> None:  # type: ignore[no-untyped-def]
    """_text against text._hashes and text._contribution: strs of every width (1-, 2- and 4-byte
    characters), lone surrogates, the CJK ranges' edges; tables of any size; every max_tokens
    up to past the stack's 512 (the heap's hashes); and the refusals, which release the table."""
    from stratum_litellm.scoring import text as spec

    pieces = (list("abcXYZ019 _-.,\n\t") + ["  ", "word", "ー", "・", "日本", "한", "é", "²", "½", "\xa0", "\ud800",
              "\udfff", "𠀀", "😀", "𝐀", "々", "\u0301"]
              + [chr(c) for c in (0x3040, 0x3041, 0x30FF, 0x3100, 0x3400, 0x4DBF, 0x4DC0, 0x4E00, 0x9FFF, 0xA000,
                                  0xAC00, 0xD7A3, 0xD7B0, 0xF900, 0xFAD9, 0xFB00, 0x20000, 0x2FA1D, 0x30000)])

    def words(limit: int) -> str:
        if rng.random() < 0.2:  # any code point
            return "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(0, limit)))
        if rng.random() < 0.3:  # ASCII only: the 1-byte str
            return "".join(rng.choice("ab cd_1.\n") for _ in range(rng.randint(0, limit)))
        return "".join(rng.choice(pieces) for _ in range(rng.randint(0, limit)))

    def bits(value: float) -> bytes:
        return struct.pack("<d", value)

    kept = spec.MAX_TOKENS
    for _ in range(rounds):
        lowered = words(rng.choice((40, 400, 2500)))
        n = kept if rng.random() < 0.5 else rng.choice((0, 1, 2, rng.randint(0, 1200)))
        mask = rng.choice((0, 1, 255, 1023, rng.randint(0, 5000)))
        table = [rng.choice((rng.uniform(-8, 8), 0.0, -0.0, float("inf"), float("nan"), 1e38)) if rng.random() < 0.02
                 else rng.uniform(-1, 1) for _ in range(mask + 1 + rng.choice((0, 0, 3)))]
        weights = array("f", table)
        got_hashes, got = features.hashes(lowered, n), features.contribution(lowered, weights, mask, n)
        if n == 0:  # (the spec has no max_tokens 0: it would read every token)
            assert got_hashes == [] and got == 0.0, lowered
            continue
        spec.MAX_TOKENS = n
        try:
            assert got_hashes == spec._hashes(lowered), (lowered, n)
            assert bits(got) == bits(spec._contribution(lowered, weights, mask)), (lowered, n, mask)
        finally:
            spec.MAX_TOKENS = kept
    long = "日" * 70_000 + " ab"
    spec.MAX_TOKENS = 1 << 16
    try:
        assert features.hashes(long, 1 << 16) == spec._hashes(long)
    finally:
        spec.MAX_TOKENS = kept
    weights = array("f", [0.5] * 16)
    for bad in (("a b", array("d", [0.0] * 16), 15, kept), ("a b", bytes(64), 15, kept),
                ("a b", memoryview(array("f", [0.0] * 16)).cast("B").cast("f", (4, 4)), 15, kept), ("a b", weights[:15], 15, kept),
                ("a b", weights, -1, kept), ("a b", weights, 2**70, kept), ("a b", weights, 15, -1),
                ("a b", weights, 15, 1 << 20), (b"a b", weights, 15, kept), ("a b", weights, 15.0, kept)):
        try:
            features.contribution(*bad)
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"contribution{bad!r} was not refused")
        weights.append(0.5)  # the buffer was released (an array exporting one cannot grow)
        weights.pop()


if len(sys.argv) > 4:
    check_features(load("_text", sys.argv[4]), rounds * 4)
print("clean")
