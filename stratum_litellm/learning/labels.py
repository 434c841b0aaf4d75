"""Labels: a request's features and whether the first tier's answer was good enough.

``needs_strong`` true means the first tier's answer was not enough (a judge graded it below
the bar, a user gave it a thumbs-down); false means it was. ``weight`` is how much a label
counts in a fit (a regeneration in Open WebUI is a weak "needs strong", 0.5).

A labels file is JSON lines, one label per line::

    {"prompt": "...", "needs_strong": true}
    {"messages": [{"role": "user", "content": "..."}], "needs_strong": false, "weight": 0.5}

Other fields are ignored (an ``id``, say). :func:`read_file` refuses a line that is not
such an object, naming the file, the line and what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .example import Example

__all__ = ["Label", "LabelsError", "SOURCES", "read_file"]

#: Where a label came from (the store's ``source`` column, a metric label).
SOURCES = ("judge", "openwebui", "regeneration", "file")


class LabelsError(ValueError):
    """A labels file the fit refuses."""


@dataclass(frozen=True, slots=True)
class Label:
    example: Example
    needs_strong: bool
    source: str
    weight: float = 1.0
    #: What identifies the labelled answer (a call id, a message id, file:line): the store
    #: keeps one label per ref, the newest.
    ref: str | None = None
    #: Where the request was served and how it scored then (for the operator's figures).
    tier: str | None = None
    score: float | None = None
    profile: str | None = None
    #: The judge's grade (1-5), when a judge gave it.
    grade: int | None = None
    #: Unix time the label was made.
    created: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def read_file(path: str | Path, keep_text: bool = True) -> Iterator[Label]:
    """The labels of a JSON-lines file, in order; a bad line raises :class:`LabelsError`."""
    file = Path(path)
    try:
        stream = file.open(encoding="utf-8")
    except OSError as exc:
        raise LabelsError(f"cannot read labels file {file}: {exc.strerror or exc}") from None
    with stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            yield _label(line, f"{file}:{number}", keep_text)


def _label(line: str, where: str, keep_text: bool) -> Label:
    def refuse(what: str) -> LabelsError:
        return LabelsError(f"{where}: {what}; expected a JSON object with \"prompt\" (a string) or \"messages\" "
                           f"(a list of chat messages), and \"needs_strong\" (true or false)")

    try:
        record = json.loads(line)
    except ValueError as exc:
        raise refuse(f"not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise refuse(f"a JSON {type(record).__name__}, not an object")
    needs = record.get("needs_strong")
    if "needs_strong" not in record:
        raise refuse("no \"needs_strong\"")
    if not isinstance(needs, bool):
        raise refuse(f"\"needs_strong\" is {json.dumps(needs)}, not true or false")
    weight = record.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not (0 < weight < math.inf):
        raise refuse(f"\"weight\" is {json.dumps(weight)}, not a positive number")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise refuse("\"messages\" is not a non-empty list")
        example = Example.of_request({"messages": messages, "tools": record.get("tools")}, keep_text)
    elif isinstance(record.get("prompt"), str):
        example = Example.of_prompt(record["prompt"], keep_text)
    else:
        raise refuse("no \"prompt\" string and no \"messages\" list")
    return Label(example, needs, "file", float(weight), ref=where)
