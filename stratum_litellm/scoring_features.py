"""Raw, explainable measurements of one piece of text, used by :mod:`stratum_litellm.scoring`.

Speed is the point of this module's shape. A regex with many alternatives costs tens of
nanoseconds per character in CPython, and ``str.translate`` leaves its fast path at the
first non-ASCII character, so the text is measured as UTF-8 *bytes* with C-level builtins:

- words: one ``translate`` (punctuation to spaces, upper to lower case) and ``split``, and
  the tokens intersected with one set of every word the hand-written lists of
  ``data/lexicon.json`` name; a list counts *distinct* words, so repetition does not
  inflate it. Phrases count when all their content words occur.
- symbols: ``translate`` deleting letters, digits and blanks leaves the punctuation
  (sentences, questions, code operators), counted with ``bytes.count``.
- shapes: digits become ``0`` and letters vanish ("3 * 4x = 7" -> "0+0=0"), so math
  notation is a handful of needles; letters become ``a``/``A`` for proper nouns.

Everything is built at import; per call, work and allocations are linear in the text,
which callers cap (see :mod:`stratum_litellm.request_view`).
"""

from __future__ import annotations

import json
import re
from importlib import resources

__all__ = ["FIELDS", "measure"]

# Names of the raw measurements, in the order measure() returns them.
FIELDS: tuple[str, ...] = (
    "tokens",  # token estimate: CJK (any 3/4-byte UTF-8 character) one each, other text 4 chars each
    "sentences",
    "questions",  # question marks
    "math_notation",  # operators between operands, LaTeX commands, math symbols
    "math_words",
    "numbers",  # distinct numerals
    "number_words",  # distinct number words (three, twice, dozen...)
    "compute_asks",  # "how many", "what percentage", ...
    "relations",  # quantities given relative to others: "40 fewer than", "twice as many", "20%", "1/4"
    "code_syntax",  # keywords, operators, fences, statements of common languages
    "code_words",  # programming vocabulary
    "reasoning",
    "enumerations",  # list items, "Statement 1", roman numerals
    "sequence",  # first / then / finally
    "entities",  # capitalised words after a lower-case word: names, places, acronyms (in the head)
    "negation",
    "constraints",
    "law",
    "medicine",
    "physics",
    "logic",
    "economics",
    "ethics",
)
_I = {name: i for i, name in enumerate(FIELDS)}
_N = len(FIELDS)

# --------------------------------------------------------------------------- lexicon


def _load_lexicon() -> dict[str, list[str]]:
    text = resources.files("stratum_litellm").joinpath("data/lexicon.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _inflect(words: list[str], *, inflect: bool) -> frozenset[bytes]:
    """Words plus simple inflections, so the lists stay short and readable."""
    out: set[str] = set()
    for w in words:
        out.add(w)
        if not inflect or len(w) < 4 or not w.isalpha():
            continue
        # Plurals and verb forms only: "-ly" and "-d" made "really" of "real", "based" of "base".
        if w.endswith("e"):
            out.update((w + "s", w + "d", w[:-1] + "ing"))
        elif w.endswith("y") and w[-2] not in "aeiou":
            out.update((w[:-1] + "ies", w[:-1] + "ied", w + "ing"))
        elif w.endswith(("s", "x", "z", "ch", "sh")):
            out.update((w + "es", w + "ed", w + "ing"))
        else:
            out.update((w + "s", w + "ed", w + "ing"))
    return frozenset(x.encode() for x in out)


_LEX = _load_lexicon()
_WORD_LISTS: tuple[tuple[int, frozenset[bytes]], ...] = tuple(
    (_I[field], _inflect(_LEX[key], inflect=inflect))
    for field, key, inflect in (
        ("math_words", "math", True),
        ("number_words", "number_words", False),
        ("relations", "relations", False),
        ("code_words", "code", True),
        ("reasoning", "reasoning", True),
        ("sequence", "sequence", False),
        ("negation", "negation", False),  # no inflection: "not" must not match "notes"
        ("constraints", "constraints", True),
        ("law", "law", True),
        ("medicine", "medicine", True),
        ("physics", "physics", True),
        ("logic", "logic", True),
        ("economics", "economics", True),
        ("ethics", "ethics", True),
    )
)
_ALL_WORDS: frozenset[bytes] = frozenset().union(*(lex for _, lex in _WORD_LISTS))
# word -> the fields whose list holds it; one loop over the (few) hits beats one set
# intersection per list.
_FIELDS_OF: dict[bytes, tuple[int, ...]] = {
    w: tuple(index for index, lex in _WORD_LISTS if w in lex) for w in _ALL_WORDS
}
_CODE_KEYWORDS = frozenset(w.encode() for w in _LEX["code_keywords"])  # words prose does not use
_LABELS = frozenset(w.encode() for w in _LEX["enumeration_labels"])

# Phrases match when all their content words occur, anywhere in the text: "how many",
# "write a function", "step by step". Order is ignored on purpose: it costs a text search
# per phrase, and on the labelled data adjacency bought nothing over co-occurrence.
# Each group is indexed by its rarest word (the longest, roughly) so that only groups whose
# rarest word occurs are checked.
_FUNCTION_WORDS = frozenset(
    b"the a an of to in on at by for is are was be it this that what how no not and or as so if do does".split()
)
_GROUPS: dict[bytes, list[tuple[frozenset[bytes], tuple[int, ...]]]] = {}


def _index_phrases() -> None:
    fields_of: dict[frozenset[bytes], tuple[int, ...]] = {}
    for field, key in (
        ("reasoning", "reasoning_phrases"),
        ("constraints", "constraint_phrases"),
        ("compute_asks", "compute_phrases"),
        ("code_words", "code_phrases"),
        ("math_words", "math_phrases"),
        ("law", "law_phrases"),
        ("medicine", "medicine_phrases"),
        ("logic", "logic_phrases"),
        ("economics", "economics_phrases"),
        ("ethics", "ethics_phrases"),
    ):
        for phrase in _LEX[key]:
            words = phrase.encode().split()
            content = frozenset(w for w in words if w not in _FUNCTION_WORDS) or frozenset(words)
            fields_of[content] = tuple(dict.fromkeys(fields_of.get(content, ()) + (_I[field],)))
    for words, fields in fields_of.items():
        key = max(words, key=lambda w: (w not in _FUNCTION_WORDS, len(w), w))
        _GROUPS.setdefault(key, []).append((words, fields))


_index_phrases()
_GROUP_KEYS = frozenset(_GROUPS)
_GROUP_WORDS = frozenset(w for entries in _GROUPS.values() for words, _ in entries for w in words)


# --------------------------------------------------------------------------- byte tables

_PUNCT = b"!\"#$%&'()*+,./:;<=>?@[\\]^`{|}~"  # '-' and '_' stay inside words: trade-off, snake_case
_UPPER = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = b"abcdefghijklmnopqrstuvwxyz"
_DIGITS = b"0123456789"
_BLANKS = b" \t\r\n\f\v"
# Punctuation and newlines -> space, upper -> lower: words and phrases in one C pass.
_WORDS = bytes.maketrans(_PUNCT + _UPPER + b"\t\r\n\f\v", b" " * len(_PUNCT) + _LOWER + b"     ")
_HIGH = bytes(range(0x80, 0x100))  # bytes of non-ASCII characters
# Deleted: leaves ASCII punctuation and newlines.
_SYMBOLS_ONLY = _UPPER + _LOWER + _DIGITS + b" \t\r\f\v" + _HIGH
# Digit shape: digits -> 0, letters and blanks (not newlines) deleted, binary operators
# folded into "+" so one needle covers 3+4, 3*4, 3<4: "3 * 4x = 7" -> "0+0=0". ("/" stays:
# "0/0" is a fraction, also a relative quantity.)
_DIGIT_SHAPE = bytes.maketrans(_DIGITS + b"*<>", b"0" * 10 + b"+++")
_NUMBERS_ONLY = bytes(i for i in range(256) if i not in _DIGITS and i not in _BLANKS)  # deleted: keeps numerals
_DIGIT_SHAPE_DELETE = _UPPER + _LOWER + b" \t\r\f\v" + _HIGH
# Case shape: lower -> a, upper -> A: "the Court" -> "aaa Aaaaa"; a capital after a
# lower-case word and a space starts a proper noun, not a sentence.
_CASE_SHAPE = bytes.maketrans(_UPPER + _LOWER, b"A" * 26 + b"a" * 26)
# Deleted: keeps the lead bytes of 3- and 4-byte characters (CJK, kana, hangul, emoji).
_NOT_WIDE_LEAD = bytes(i for i in range(256) if not 0xE0 <= i <= 0xF4)

# In the digit shape, an operator between numbers; '_', '{', ':' and ',' never count, so
# snake_case identifiers and JSON are not math. x^2 keeps its "^0".
_MATH_SHAPES = (b"0+0", b"0/0", b"^0", b"0=0", b")=0", b"=0+", b"0-0=")
# Non-ASCII math: the blocks U+2200-U+22FF (operators: ∀ ∑ √ ∞ ≤ ≠ ⊂ ...), arrows ⇒ ⇔,
# and × ÷ ± ² ³ ¬. Greek letters are left out: they are ordinary letters in Greek text.
_MATH_UNICODE_BYTES = (b"\xe2\x88", b"\xe2\x89", b"\xe2\x8a", b"\xe2\x8b", "\u21d2".encode(), "\u21d4".encode(),
                       "\u00d7".encode(), "\u00f7".encode(), "\u00b1".encode(), "\u00b2".encode(), "\u00b3".encode(),
                       "\u00ac".encode())  # fmt: skip
# Code operators, counted among the symbols of the text (letters, digits, blanks removed).
# Semicolons and underscores are counted apart (prose has them too, see measure()).
_CODE_SYMBOLS = (b"==", b"&&", b"=>", b"->", b"::", b"</", b"():")
# Folded first: "!=" and "+=" count as "==", "||" as "&&".
_FOLD_CODE = bytes.maketrans(b"!+|", b"==&")
_LIST_SHAPES = (b"\n0.", b"\n0)", b"\n-", b"\n*", b"\n()")
_PROPER_SHAPE = b"a A"  # a capitalised word (or acronym) after a lower-case word
_ENTITY_WINDOW = 600  # the count saturates early: the head of the text is enough
# Needles end in a digit: digits are rare in text, so the search skips fast.
_LABEL_NEEDLES = {label: (label + b" 1", label + b" 2") for label in _LABELS}
_ROMAN = (b" II. ", b" III. ", b" IV. ", b"\nII. ", b"\nIII. ", b"(ii)", b"(iii)", b"(iv)")
_ROMAN_WORDS = frozenset((b"ii", b"iii", b"iv"))
_SQL_CLAUSES = frozenset((b"where", b"join", b"distinct", b"limit", b"having", b"group", b"order"))
_CJK_STOPS = tuple(c.encode() for c in "\u3002\uff01\uff1f")  # 。！？
_CJK_QUESTION = "\uff1f".encode()
_CURLY = ("\u2019".encode(), "\u2018".encode())


# Every word any check looks at. Tokens are intersected with this set directly: no set of
# the text's own vocabulary is ever built, which is the biggest per-call saving.
_SQL_WORDS = frozenset((b"from", b"select", b"delete"))
_INTERESTING: frozenset[bytes] = (
    _ALL_WORDS | _GROUP_WORDS | _LABELS | _CODE_KEYWORDS | _SQL_WORDS | _SQL_CLAUSES | _ROMAN_WORDS
)
# LaTeX commands; the pattern starts with a literal backslash, so the scan skips fast.
_LATEX_RE = re.compile(
    rb"\\(?:frac|sqrt|sum|int|cdot|times|leq?|geq?|neq?|pi|alpha|beta|theta|lambda|infty|mathbb|partial|lim|log|binom)"
    rb"(?![a-z])"
)

_OPERATORS = frozenset(b"=+*/^<>")
_CODE_CHARS = frozenset(b"=-:&|+<>(_`{;")


def _has_operator(sym: bytes) -> bool:
    return not _OPERATORS.isdisjoint(sym)


# Field indices, resolved once.
_TOKENS, _SENTENCES, _QUESTIONS, _MATH_NOTATION, _NUMBERS, _RELATIONS, _CODE_SYNTAX, _ENUMERATIONS, _ENTITIES = (
    _I[f]
    for f in ("tokens", "sentences", "questions", "math_notation", "numbers", "relations", "code_syntax",
              "enumerations", "entities")
)


# --------------------------------------------------------------------------- measure


def measure(text: str) -> list[float]:
    """Counts of every field in FIELDS for ``text`` (all zero for empty text)."""
    m = [0.0] * _N
    if not text:
        return m
    n = len(text)
    b = text.encode("utf-8", "replace")  # 'replace': lone surrogates must not raise
    ascii_only = len(b) == n
    wide = 0
    if not ascii_only:
        wide = len(b.translate(None, _NOT_WIDE_LEAD))
        for curly in _CURLY:
            b = b.replace(curly, b"'")
    m[_TOKENS] = wide + (n - wide) / 4.0

    # The symbols of the text, newlines kept: sentences, questions, code operators.
    sym = b.translate(None, _SYMBOLS_ONLY)
    questions = sym.count(b"?")
    sentences = sym.count(b".") + sym.count(b"!") + questions
    if wide:
        questions += b.count(_CJK_QUESTION)
        sentences += sum(map(b.count, _CJK_STOPS))
    m[_SENTENCES] = sentences or 1
    m[_QUESTIONS] = questions

    # Words: lower case, punctuation as spaces, then one pass against the word lists.
    low = b.translate(_WORDS)
    toks = low.split()
    hits = _INTERESTING.intersection(toks)
    for word in hits & _ALL_WORDS:
        for index in _FIELDS_OF[word]:
            m[index] += 1
    # Distinct numerals, with their decimal points and thousands separators removed ("1,200").
    m[_NUMBERS] = len(set(b.translate(None, _NUMBERS_ONLY).split()))

    # Phrases (co-occurring words) and labelled items ("statement 1", "step 3").
    for word in hits & _GROUP_KEYS:
        for words, fields in _GROUPS[word]:
            if words <= hits:
                for index in fields:
                    m[index] += 1
    enumerations = 0
    for label in hits & _LABELS:
        one, two = _LABEL_NEEDLES[label]
        enumerations += low.count(one) + low.count(two)

    # Notation: math in the digit shape, lists at line starts, proper nouns in the case shape.
    dshape = b.translate(_DIGIT_SHAPE, _DIGIT_SHAPE_DELETE)
    enumerations += sum(map(dshape.count, _LIST_SHAPES))
    math = sum(map(dshape.count, _MATH_SHAPES)) if _has_operator(sym) else 0
    if b"\\" in sym:
        math += len(_LATEX_RE.findall(b))
    if not ascii_only:
        math += sum(map(b.count, _MATH_UNICODE_BYTES))
    m[_MATH_NOTATION] = math
    if b"%" in sym:
        m[_RELATIONS] += 1
    if b"0/0" in dshape:
        m[_RELATIONS] += 1
    head = b[:_ENTITY_WINDOW]
    m[_ENTITIES] = max(0, head.translate(_CASE_SHAPE).count(_PROPER_SHAPE) - head.count(b" I "))  # not "I"
    if hits & _ROMAN_WORDS:  # I. II. III. statements
        enumerations += sum(map(b.count, _ROMAN))
    m[_ENUMERATIONS] = enumerations

    code = 2 * len(hits & _CODE_KEYWORDS)
    if b"from" in hits and (b"select" in hits or b"delete" in hits):
        # SQL in upper case, or lower case with a clause prose rarely has ("select ... from" is prose too).
        if b"SELECT " in b or b" FROM " in b:
            code += 4
        elif hits & _SQL_CLAUSES or b"*" in sym:
            code += 2
    if not _CODE_CHARS.isdisjoint(sym):
        code += sum(map(sym.translate(_FOLD_CODE).count, _CODE_SYMBOLS))
        if b"`" in sym:
            code += 3 * b.count(b"```")
        if b"{\n" in sym:  # blocks open at line ends; LaTeX braces ({x}^{2}) do not
            code += sym.count(b"{\n")
        if b";\n" in sym or sym.endswith(b";"):  # statements end lines; prose puts semicolons mid-line
            code += sym.count(b";\n") + sym.endswith(b";")
        if b"_" in sym:  # snake_case, not fill-in-the-blank "_____" runs
            code += max(0, sym.count(b"_") - 2 * b.count(b"__"))
    m[_CODE_SYNTAX] = code
    return m
