#!/usr/bin/env python3
"""The router's input-token estimate against real tokenizers, and what the fit check costs.

    .venv/bin/python benchmarks/routing/token_estimate.py --eval ../shared/eval/routellm_dev.jsonl
    .venv/bin/python benchmarks/routing/token_estimate.py --eval ../shared/eval/routellm_dev.jsonl --json out.json

1. Estimate against truth: every request is tokenized by real llama-servers (llama.cpp's
   ``/apply-template`` with the model's own chat template, then ``/tokenize``), SmolLM2's
   tokenizer (49k vocabulary) and Gemma 3's (262k), and estimated by
   ``stratum_litellm.routing.needs.estimate``. Requests: the labelled prompts (a sample),
   long documents of this repository (prose, code, JSON; 2k to 60k characters), and text in
   wider scripts (CJK, Cyrillic, Greek, emoji) made of the characters of each script's
   common words. Reported: the ratio estimate / real per kind (p1, median, p99), and the
   share of requests the estimate under-counts, and by how much at worst.
2. Decision cost: ``RouterEngine.route(body)`` with every tier's context known (the fit
   check estimates the tokens) against the same engine with no limit known (the check
   leaves no trace), taking turns in one process, CPU time per call.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from servers import LlamaServer, paths  # noqa: E402
from stratum_litellm.config import parse_settings  # noqa: E402
from stratum_litellm.gateway.engine import RouterEngine  # noqa: E402
from stratum_litellm.routing.needs import estimate  # noqa: E402
from stratum_litellm.scoring.view import RequestView  # noqa: E402

WIDE_SCRIPTS = {
    "chinese": "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷域读",
    "japanese": "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをんアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモ日本語東京大学先生学生時間今日明日",
    "korean": "가나다라마바사아자차카타파하한국어대한민국서울사랑학교선생님학생시간오늘내일",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    "emoji": "😀😂🤔👍🎉🚀🌍🔥💡📚✅❤️🙏😅🤖",
}


def wide_text(script: str, chars: int, rng: random.Random) -> str:
    letters = WIDE_SCRIPTS[script]
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        length = rng.randint(1, 3) if script in ("chinese", "japanese", "emoji") else rng.randint(2, 9)
        words.append("".join(rng.choice(letters) for _ in range(length)))
    sep = "" if script in ("chinese", "japanese") else " "
    text = sep.join(words)
    return text[:chars]


def documents() -> list[tuple[str, str]]:
    """Long texts of this repository, by kind (prose, code, JSON), cut at several sizes."""
    sources = {
        "prose": [ROOT / "README.md", ROOT / "docs" / "learning.md", ROOT / "docs" / "deploy.md"],
        "code": sorted((ROOT / "stratum_litellm").rglob("*.py"))[:40] + [ROOT / "stratum_litellm/scoring/_bytescan.c"],
        "json": [ROOT / "deploy/grafana/dashboards/stratum.json", ROOT / "stratum_litellm/scoring/data/lexicon.json"],
    }
    found = []
    for kind, files in sources.items():
        text = "\n\n".join(f.read_text(encoding="utf-8") for f in files)
        for size in (2_000, 8_000, 20_000, 60_000):
            found.append((kind, text[:size]))
    return found


def requests(eval_path: Path | None, sample: int, rng: random.Random) -> list[tuple[str, list[dict[str, str]]]]:
    found: list[tuple[str, list[dict[str, str]]]] = []
    if eval_path is not None:
        rows = [json.loads(line) for line in eval_path.open(encoding="utf-8") if line.strip()]
        for row in rng.sample(rows, min(sample, len(rows))):
            found.append((f"eval:{row.get('benchmark', 'prompt')}", [{"role": "user", "content": row["prompt"]}]))
    for kind, text in documents():
        found.append((f"document:{kind}", [{"role": "system", "content": "Answer from the document."},
                                            {"role": "user", "content": f"Summarise this:\n\n{text}"}]))
    for script in WIDE_SCRIPTS:
        for size in (200, 2_000, 12_000):
            found.append((f"script:{script}", [{"role": "user", "content": wide_text(script, size, rng)}]))
    return found


def real_tokens(client: httpx.Client, messages: list[dict[str, str]]) -> int:
    prompt = client.post("/apply-template", json={"messages": messages}).json()["prompt"]
    return len(client.post("/tokenize", json={"content": prompt, "add_special": True}).json()["tokens"])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def accuracy(eval_path: Path | None, sample: int) -> dict[str, Any]:
    rng = random.Random(7)
    reqs = requests(eval_path, sample, rng)
    # The Gemma 3 GGUF (a base model) carries no chat template: make run's one (Gemma's turns).
    tokenizers = {"smollm2": (paths.smollm2_gguf(), []),
                  "gemma3": (paths.gemma3_gguf(), ["--chat-template-file", str(paths.SMART_CHAT_TEMPLATE)])}
    table: dict[str, dict[str, list[float]]] = {}
    for name, (model, extra) in tokenizers.items():
        with LlamaServer(model, alias=name, slots=1, ctx=2048, ready_timeout=300, extra_args=extra) as server, \
                httpx.Client(base_url=server.base_url, timeout=120) as client:
            for kind, messages in reqs:
                real = real_tokens(client, messages)
                guess = estimate(RequestView.from_request({"messages": messages}))
                table.setdefault(name, {}).setdefault(kind.split(":")[0] + ":" + kind.split(":")[1], []).append(
                    guess / max(real, 1))
    return table


def decision_cost(calls: int) -> dict[str, float]:
    base = {"gpu": {"enabled": False}, "affinity": {"enabled": False}}
    known = {**base, "tiers": {"fast": {"model_group": "gemma4-fast", "limits": {"context_tokens": 32_768}},
                               "smart": {"model_group": "gemma4-smart", "limits": {"context_tokens": 8_192}}}}
    engines = {"no limit known": RouterEngine(parse_settings(base)), "context known": RouterEngine(parse_settings(known))}
    rng = random.Random(3)
    words = (ROOT / "README.md").read_text(encoding="utf-8").split()
    texts = {size: [" ".join(rng.sample(words, size // 6))[:size] for _ in range(50)] for size in (200, 2_000)}
    times: dict[str, list[float]] = {f"{name} @{size}": [] for name in engines for size in texts}
    for block in range(calls // 100):
        for size, pool in texts.items():
            for name, engine in engines.items():
                for i in range(100):
                    body = {"model": "gemma4-auto", "messages": [{"role": "user", "content": pool[(block + i) % 50]}]}
                    c0 = time.thread_time_ns()
                    engine.route(body)
                    times[f"{name} @{size}"].append((time.thread_time_ns() - c0) / 1000)
    for engine in engines.values():
        engine.close()
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, help="a labelled prompts file (e.g. ../shared/eval/routellm_dev.jsonl)")
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--calls", type=int, default=6000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    table = accuracy(args.eval, args.sample)
    print("estimate / real tokens (ratio; below 1 = under-counted)")
    print(f"{'tokenizer':<10}{'requests':<20}{'n':>5}{'p1':>8}{'median':>8}{'p99':>8}{'under':>8}{'worst':>8}")
    for tokenizer, kinds in table.items():
        for kind, ratios in sorted(kinds.items()):
            under = sum(1 for r in ratios if r < 1) / len(ratios)
            print(f"{tokenizer:<10}{kind:<20}{len(ratios):>5}{quantile(ratios, 0.01):>8.2f}"
                  f"{statistics.median(ratios):>8.2f}{quantile(ratios, 0.99):>8.2f}{under:>8.0%}{min(ratios):>8.2f}")
    costs = decision_cost(args.calls)
    print("\ndecision (RouterEngine.route), median CPU µs")
    for size in (200, 2_000):
        known, unknown = costs[f"context known @{size}"], costs[f"no limit known @{size}"]
        print(f"  {size:>5} chars: no limit known {unknown:7.1f}   context known {known:7.1f}   ratio {known / unknown:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"ratios": table, "decision_us": costs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
