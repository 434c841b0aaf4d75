"""What a request needs of a tier: room for its tokens, images, audio, tools.

Read from the request view at no extra cost but one: the token estimate encodes the
view's text once (bounded: the view holds at most ``MAX_SCANNED_CHARS`` characters), and
only when some tier's context is known. The estimate errs high, never much low: a request
routed to a tier whose context cannot hold it fails there, one routed elsewhere with room
to spare does not.
"""

from __future__ import annotations

import math

from ..scoring.view import RequestView

__all__ = ["Needs"]

#: Letters and spaces (ASCII) per token: real tokenizers give about 4 for English prose and
#: 3.5 for code. Digits and punctuation are a token each (many tokenizers split digits),
#: and each character outside ASCII (CJK, kana, hangul, Cyrillic, emoji...) 2.4: about 1 for
#: a large vocabulary (Gemma's 262k), up to 2.7 for a small one (SmolLM2's 49k). Measured
#: against both in benchmarks/routing/token_estimate.py: it over-counts by 1.2x-1.7x on English
#: and code with either, and under-counts by at most 12% (Korean, emoji, small vocabulary).
LETTERS_PER_TOKEN = 3.6
TOKENS_PER_WIDE_CHAR = 2.4
#: A chat template's share: per request (SmolLM2's adds a 30-token system prompt of its
#: own) and per message (role markers, separators).
TOKENS_PER_REQUEST = 30
TOKENS_PER_MESSAGE = 6
#: What one image takes in a vision model's context (576: LLaVA's; Gemma 3 takes 256).
TOKENS_PER_IMAGE = 576
_DIGITS = b"0123456789"
_WORDY = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \t\n\r"


class Needs:
    """One request's needs; the token estimate is made on first use, once."""

    __slots__ = ("view", "_input")

    def __init__(self, view: RequestView) -> None:
        self.view = view
        self._input: int | None = None

    @property
    def vision(self) -> bool:
        """It has image (or video) parts."""
        view = self.view
        return view.images - view.audio - view.files > 0

    @property
    def audio(self) -> bool:
        return self.view.audio > 0

    @property
    def tools(self) -> bool:
        """It offers tools, or its conversation holds tool calls or results."""
        return bool(self.view.tools)

    @property
    def output_tokens(self) -> int:
        """The answer's length it asks for (0: not said)."""
        return self.view.output_tokens

    @property
    def input_tokens(self) -> int:
        """An estimate of its input's tokens that errs high."""
        if self._input is None:
            self._input = estimate(self.view)
        return self._input


def estimate(view: RequestView) -> int:
    """Input tokens of the whole request: the view's text counted by kind of character
    (a few C-level passes over at most ``MAX_SCANNED_CHARS``), scaled up to the request's
    whole size (``total_chars``), plus the template's and each image's share."""
    scanned = 0
    tokens = 0.0
    for text in (view.last_user, view.system, view.history, view.tools):
        if not text:
            continue
        scanned += len(text)
        ascii_text = text.encode("ascii", "ignore")
        digits = len(ascii_text) - len(ascii_text.translate(None, _DIGITS))
        punctuation = len(ascii_text.translate(None, _WORDY))
        letters = len(ascii_text) - digits - punctuation
        tokens += letters / LETTERS_PER_TOKEN + digits + punctuation + (len(text) - len(ascii_text)) * TOKENS_PER_WIDE_CHAR
    total = max(view.total_chars, scanned)
    if scanned:
        tokens *= total / scanned
    else:
        tokens = total / LETTERS_PER_TOKEN * 2  # nothing read: sizes alone, counted high
    images = max(0, view.images - view.audio - view.files)
    return math.ceil(tokens) + TOKENS_PER_REQUEST + TOKENS_PER_MESSAGE * max(1, view.turns) + TOKENS_PER_IMAGE * images
