"""The judge's prompt, and its verdict read back.

The judge sees the conversation, the stronger tier's answer as a reference and the first
tier's answer as the candidate, and grades the candidate from 1 to 5: could the user have
done without the reference? Judges favour longer answers, so the prompt says to grade
substance and not length, and both answers are cut to the same length before the judge
reads them. A grade at or above ``good_enough_at`` (4 by default) labels the request "the
first tier was enough"; below it, "needs the stronger tier".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["INSTRUCTIONS", "RESPONSE_FORMAT", "grade", "messages"]

#: Characters of the conversation, and of each answer, the judge reads (the end of the
#: conversation is kept: the last turn is what was answered).
CONVERSATION_CHARS = 6_000
ANSWER_CHARS = 3_000

INSTRUCTIONS = """You review the work of an AI assistant. You get a conversation, a reference answer to its \
last message written by a strong assistant, and a candidate answer to the same message.

Decide whether the candidate serves the user as well as the reference: is it correct, does it do \
what was asked, is it complete enough that the user would not need the reference? Grade substance, \
not style or length: a short candidate that is right and complete is as good as a long reference, \
and a long one is not better for its length. If the reference itself is wrong, do not hold the \
candidate to it.

Grades:
5 - as good as the reference, or better
4 - a little worse, but it fully serves the user
3 - clearly worse: the user would likely want the reference
2 - much worse, or partly wrong
1 - wrong, off topic or unhelpful

Answer with JSON only: {"rating": <1-5>, "reason": "<one short sentence>"}"""

#: The OpenAI ``response_format`` that keeps a judge to that JSON (vLLM, llama.cpp and hosted
#: APIs constrain their output to the schema).
RESPONSE_FORMAT: Mapping[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"rating": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                           "reason": {"type": "string", "maxLength": 300}},
            "required": ["rating", "reason"],
            "additionalProperties": False,
        },
    },
}


def messages(conversation: Sequence[Mapping[str, Any]], reference: str, candidate: str) -> list[dict[str, str]]:
    """The judge's chat messages for one sample."""
    shown = _conversation(conversation)
    body = (f"[Conversation]\n{shown}\n\n[Reference answer]\n{_cut(reference, ANSWER_CHARS)}\n\n"
            f"[Candidate answer]\n{_cut(candidate, ANSWER_CHARS)}\n\n"
            "Grade the candidate answer (JSON only).")
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": body}]


_RATING = re.compile(r'"?rating"?\s*[:=]\s*"?\[*\s*([1-5])\b', re.IGNORECASE)


def grade(reply: str) -> int | None:
    """The grade (1-5) in a judge's reply: its JSON, else a ``rating: N`` it wrote; None
    when there is none (the sample is then counted unparsed, and labels nothing)."""
    text = reply.strip()
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            found = json.loads(text[start:end + 1])
        except ValueError:
            found = None
        if isinstance(found, dict) and "rating" in found:  # its JSON decides: 3.5 is no grade
            value = found["rating"]
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
            return value if ok else None
    match = _RATING.search(text)
    return int(match.group(1)) if match else None


def _conversation(conversation: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for message in conversation:
        role = str(message.get("role", "user"))
        lines.append(f"{role}: {_text(message.get('content'))}")
    joined = "\n".join(lines)
    return joined if len(joined) <= CONVERSATION_CHARS else "…" + joined[-CONVERSATION_CHARS:]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: their text; images and files are named
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
                elif part.get("type"):
                    parts.append(f"[{part['type']}]")
            elif isinstance(part, str):
                parts.append(part)
        return " ".join(parts)
    return "" if content is None else str(content)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " …"
