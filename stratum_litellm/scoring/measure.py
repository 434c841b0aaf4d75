"""Raw, explainable measurements of one piece of text, used by :mod:`stratum_litellm.scoring.scorer`.

Speed is the point of this module's shape. A regex with many alternatives costs tens of
nanoseconds per character in CPython, so the text is measured as UTF-8 *bytes*, through
a few views that a 256-byte table and a set of deleted bytes define (as ``bytes.translate``
does), all counted in one call of the scan engine (:mod:`stratum_litellm.scoring.scan`, in C
where it was built, else in Python, with the same results):

- words: punctuation to spaces, upper to lower case, then every word looked up in the
  vocabulary of the hand-written lists (:mod:`.lexicon`); a list counts *distinct* words, so
  repetition does not inflate it. Phrases count when all their content words occur.
- symbols: deleting letters, digits and blanks leaves the punctuation (sentences,
  questions, code operators).
- shapes: digits become ``0`` and letters vanish ("3 * 4x = 7" -> "0+0=0"), so math
  notation is a handful of needles; letters become ``a``/``A`` for proper nouns.

Everything is built at import; per call, work and allocations are linear in the text,
which callers cap (see :mod:`stratum_litellm.scoring.view`). ``measure_python`` turns the
scan's counts into the fields; where the C parts were built, ``measure`` is its C twin
(``_measure.c``), which reads the C scan's results in place.
"""

from __future__ import annotations

import logging
import operator
import re
from typing import NamedTuple

from .lexicon import CODE_KEYWORDS, ENUMERATION_LABELS, PHRASES, WORD_LISTS
from .native import load
from .scan import ENGINE, Scanner, View

__all__ = ["FIELDS", "MEASURE_ENGINE", "Counts", "measure", "measure_python"]


class Counts(NamedTuple):
    """The raw measurements of a text (of a request, once its texts are weighted and summed)."""

    tokens: float = 0.0  # token estimate: CJK (any 3/4-byte UTF-8 character) one each, other text 4 chars each
    sentences: float = 0.0
    questions: float = 0.0  # question marks
    math_notation: float = 0.0  # operators between operands, LaTeX commands, math symbols
    math_words: float = 0.0
    numbers: float = 0.0  # distinct numerals
    number_words: float = 0.0  # distinct number words (three, twice, dozen...)
    compute_asks: float = 0.0  # "how many", "what percentage", ...
    relations: float = 0.0  # quantities given relative to others: "40 fewer than", "twice as many", "20%", "1/4"
    code_syntax: float = 0.0  # keywords, operators, fences, statements of common languages
    code_words: float = 0.0  # programming vocabulary
    reasoning: float = 0.0
    enumerations: float = 0.0  # list items, "Statement 1", roman numerals
    sequence: float = 0.0  # first / then / finally
    entities: float = 0.0  # capitalised words after a lower-case word: names, places, acronyms (in the head)
    negation: float = 0.0
    constraints: float = 0.0
    law: float = 0.0
    medicine: float = 0.0
    physics: float = 0.0
    logic: float = 0.0
    economics: float = 0.0
    ethics: float = 0.0


FIELDS: tuple[str, ...] = Counts._fields
_I = {name: i for i, name in enumerate(FIELDS)}
_N = len(FIELDS)

# --------------------------------------------------------------------------- word lists

# The tags the scan engine counts per distinct word: first the field of each word list.
_WORD_LISTS: tuple[tuple[int, frozenset[bytes]], ...] = tuple((_I[field], words) for field, words in WORD_LISTS.items())
_ALL_WORDS: frozenset[bytes] = frozenset().union(*(words for _, words in _WORD_LISTS))
# word -> the fields whose list holds it.
_FIELDS_OF: dict[bytes, tuple[int, ...]] = {
    w: tuple(index for index, words in _WORD_LISTS if w in words) for w in _ALL_WORDS
}
_PHRASES: list[tuple[frozenset[bytes], tuple[int, ...]]] = [
    (words, tuple(_I[field] for field in fields)) for words, fields in PHRASES.items()
]
_GROUP_WORDS = frozenset(w for words, _ in _PHRASES for w in words)


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
_LABEL_NEEDLES = {label: (label + b" 1", label + b" 2") for label in ENUMERATION_LABELS}
_ROMAN = (b" II. ", b" III. ", b" IV. ", b"\nII. ", b"\nIII. ", b"(ii)", b"(iii)", b"(iv)")
_ROMAN_WORDS = frozenset((b"ii", b"iii", b"iv"))
_SQL_CLAUSES = frozenset((b"where", b"join", b"distinct", b"limit", b"having", b"group", b"order"))
_CJK_STOPS = tuple(c.encode() for c in "\u3002\uff01\uff1f")  # 。！？
_CJK_QUESTION = "\uff1f".encode()
_CURLY = ("\u2019".encode(), "\u2018".encode())


# Every word any check looks at. Tokens are intersected with this set directly: no set of
# the text's own vocabulary is ever built, which is the biggest per-call saving.
_SQL_FROM, _SQL_VERBS = (b"from",), (b"select", b"delete")
_SQL_WORDS = frozenset(_SQL_FROM + _SQL_VERBS)
_INTERESTING: frozenset[bytes] = (
    _ALL_WORDS | _GROUP_WORDS | ENUMERATION_LABELS | CODE_KEYWORDS | _SQL_WORDS | _SQL_CLAUSES | _ROMAN_WORDS
)
# LaTeX commands, counted where a backslash starts one that no lower-case letter follows
# (the pattern starts with a literal backslash, so the scan skips fast).
_LATEX_COMMANDS = (b"frac", b"sqrt", b"sum", b"int", b"cdot", b"times", b"le", b"leq", b"ge", b"geq", b"ne", b"neq",
                   b"pi", b"alpha", b"beta", b"theta", b"lambda", b"infty", b"mathbb", b"partial", b"lim", b"log",
                   b"binom")  # fmt: skip
_LATEX_RE = re.compile(rb"\\(?:" + b"|".join(_LATEX_COMMANDS) + rb")(?![a-z])")

_OPERATORS = frozenset(b"=+*/^<>")
_CODE_CHARS = frozenset(b"=-:&|+<>(_`{;")



# --------------------------------------------------------------------------- the scan

# Every count measure() reads, taken in one engine call. Each view says how it is made from
# the text's bytes and names its counts: a count is the sum of its needles' counts (non-
# overlapping, as bytes.count does) or, for a byte class, how many of the view's bytes are in it.
_SENTENCE_ENDS = b".!?"
# Per enumeration label, the tag that says it occurs and the count of "<label> 1" and "<label> 2".
_LABEL_COUNTS = {f"label {label.decode()}": f"{label.decode()} 1, 2" for label in sorted(ENUMERATION_LABELS)}


class _Counted(NamedTuple):
    view: View
    needles: dict[str, tuple[bytes, ...]]  # count name -> the needles it sums
    classes: dict[str, bytes]  # count name -> a byte class


_COUNTED: dict[str, _Counted] = {
    "raw": _Counted(View(), {
        "fence": (b"```",), "dunder": (b"__",), "select": (b"SELECT ",), "from": (b" FROM ",), "roman": _ROMAN,
        "cjk_stops": _CJK_STOPS[:2], "cjk_question": (_CJK_QUESTION,),  # 。！ and ？
        "math_unicode": _MATH_UNICODE_BYTES}, {}),
    "head": _Counted(View(limit=_ENTITY_WINDOW), {"head_i": (b" I ",)}, {}),  # "I" is not a proper noun
    "case": _Counted(View(table=_CASE_SHAPE, limit=_ENTITY_WINDOW), {"proper": (_PROPER_SHAPE,)}, {}),
    "sym": _Counted(View(delete=_SYMBOLS_ONLY), {
        "question": (b"?",), "percent": (b"%",), "backslash": (b"\\",), "backtick": (b"`",), "star": (b"*",),
        "underscore": (b"_",)}, {
        "sentence_ends": _SENTENCE_ENDS, "operators": bytes(sorted(_OPERATORS)),
        "code_chars": bytes(sorted(_CODE_CHARS))}),
    "fold": _Counted(View(table=_FOLD_CODE, delete=_SYMBOLS_ONLY),  # the fold keeps { ; and newlines
                     {"code_symbols": _CODE_SYMBOLS, "brace_nl": (b"{\n",), "semi_nl": (b";\n",)}, {}),
    "low": _Counted(View(table=_WORDS), {
        f"{label.decode()} 1, 2": _LABEL_NEEDLES[label] for label in sorted(ENUMERATION_LABELS)}, {}),
    "numbers": _Counted(View(delete=_NUMBERS_ONLY), {}, {}),
    "digits": _Counted(View(table=_DIGIT_SHAPE, delete=_DIGIT_SHAPE_DELETE),
                       {"list_shapes": _LIST_SHAPES, "math_shapes": _MATH_SHAPES, "fraction": (b"0/0",)}, {}),
    "wide": _Counted(View(delete=_NOT_WIDE_LEAD), {}, {}),
}  # fmt: skip

# Where each named count lands in the scan's flat list of counts (view by view, needles then classes).
_RUNS: dict[str, slice] = {}
_start = 0
for _counted in _COUNTED.values():
    for _name, _run in (*_counted.needles.items(), *((name, (cls,)) for name, cls in _counted.classes.items())):
        _RUNS[_name] = slice(_start, _start + len(_run))
        _start += len(_run)
_VIEW = {name: i for i, name in enumerate(_COUNTED)}
# Most counts are one needle's or one class's: measure_python picks them all in one call.
_SINGLE = tuple(name for name, run in _RUNS.items() if run.stop - run.start == 1)
_PICK_SINGLE = operator.itemgetter(*(_RUNS[name].start for name in _SINGLE))


def _sum(counts: list[int], name: str) -> int:
    """A count of several needles: the sum of theirs."""
    return sum(counts[_RUNS[name]])


# Tags of vocabulary words: first the field of each word list, then word groups of their own,
# then one per enumeration label (whether that label occurs).
_TAGGED: dict[str, frozenset[bytes]] = {
    "code_keyword": CODE_KEYWORDS, "sql_clause": _SQL_CLAUSES, "roman": _ROMAN_WORDS, "from": frozenset(_SQL_FROM),
    "select": frozenset(_SQL_VERBS), "label": ENUMERATION_LABELS,
    **{f"label {label.decode()}": frozenset((label,)) for label in sorted(ENUMERATION_LABELS)},
}
_TAG = {name: _N + i for i, name in enumerate(_TAGGED)}
_VOCABULARY: dict[bytes, tuple[int, ...]] = {word: () for word in _INTERESTING}
_VOCABULARY.update(_FIELDS_OF)
for _name, _words in _TAGGED.items():
    for _word in _words:
        _VOCABULARY[_word] += (_TAG[_name],)
_SCANNER_SPEC = {
    "views": [View(c.view.table, c.view.delete, c.view.limit, tuple(n for run in c.needles.values() for n in run),
                   tuple(c.classes.values())) for c in _COUNTED.values()],
    "vocabulary": _VOCABULARY,
    "tags": _N + len(_TAGGED),
    "words_view": _VIEW["low"],
    "distinct_view": _VIEW["numbers"],
    "phrases": [(sorted(words), fields) for words, fields in _PHRASES],
}
_SCANNER = Scanner(**_SCANNER_SPEC)


# --------------------------------------------------------------------------- measure


def measure_python(text: str) -> Counts:
    """The measurements of ``text`` (all zero for empty text): the reference for the C ones (``_measure.c``)."""
    if not text:
        return Counts()
    n = len(text)
    b = text.encode("utf-8", "replace")  # 'replace': lone surrogates must not raise
    ascii_only = len(b) == n
    curly = 0
    if not ascii_only:
        for quote in _CURLY:  # typographic apostrophes join words as "'" does
            if quote in b:
                curly += b.count(quote)
                b = b.replace(quote, b"'")
    counts, lengths, tags, numerals = _SCANNER.scan(b)
    c = dict(zip(_SINGLE, _PICK_SINGLE(counts)))
    tag = dict(zip(_TAGGED, tags[_N:]))
    m = dict(zip(FIELDS, tags[:_N]))  # the word lists' fields (distinct words), plus their phrases
    wide = lengths[_VIEW["wide"]] + curly  # a curly quote is a 3-byte character too
    m["tokens"] = wide + (n - wide) / 4.0

    # Sentences and questions from the text's symbols.
    questions = c["question"]
    sentences = c["sentence_ends"]
    if wide:
        questions += c["cjk_question"]
        sentences += _sum(counts, "cjk_stops") + c["cjk_question"]
    m["sentences"] = sentences or 1
    m["questions"] = questions
    m["numbers"] = numerals  # distinct numerals, "1,200" read as 1200

    # Labelled items ("statement 1", "step 3"), lists at line starts, roman numerals.
    enumerations = _sum(counts, "list_shapes")
    if tag["label"]:
        for label, count in _LABEL_COUNTS.items():
            if tag[label]:
                enumerations += _sum(counts, count)
    if tag["roman"]:  # I. II. III. statements
        enumerations += _sum(counts, "roman")
    m["enumerations"] = enumerations

    # Math: operators between numbers (digit shape), LaTeX commands, math symbols.
    math = _sum(counts, "math_shapes") if c["operators"] else 0
    if c["backslash"]:
        math += len(_LATEX_RE.findall(b))
    if not ascii_only:
        math += _sum(counts, "math_unicode")
    m["math_notation"] = math
    if c["percent"]:
        m["relations"] += 1
    if c["fraction"]:
        m["relations"] += 1
    m["entities"] = max(0, c["proper"] - c["head_i"])

    code = 2 * tag["code_keyword"]
    if tag["from"] and tag["select"]:
        # SQL in upper case, or lower case with a clause prose rarely has ("select ... from" is prose too).
        if c["select"] or c["from"]:
            code += 4
        elif tag["sql_clause"] or c["star"]:
            code += 2
    if c["code_chars"]:
        code += _sum(counts, "code_symbols") + c["brace_nl"]  # blocks open at line ends; LaTeX braces do not
        if c["backtick"]:
            code += 3 * c["fence"]
        # Statements end lines; prose puts semicolons mid-line.
        # (The symbols view ends with ";" when the text does, past what the view deletes.)
        code += c["semi_nl"] + b.rstrip(_SYMBOLS_ONLY).endswith(b";")
        if c["underscore"]:  # snake_case, not fill-in-the-blank "_____" runs
            code += max(0, c["underscore"] - 2 * c["dunder"])
    m["code_syntax"] = code
    return Counts(**m)


# The same measurements in C, reading the C scan's results in place: the lines above cost
# more than the scan itself once they run in Python. The C code finds every count, field and
# tag it reads by name in this layout, derived from the declarations above; it refuses a
# layout with a name missing or one it does not read, so the two cannot drift apart.
_LAYOUT = {
    "fields": _N,
    **{f: _I[f] for f in ("tokens", "sentences", "questions", "numbers", "enumerations", "math_notation", "relations",
                          "entities", "code_syntax")},
    **{name: run if run.stop - run.start > 1 else run.start for name, run in _RUNS.items()
       if name not in _LABEL_COUNTS.values()},
    "labels": tuple((_TAG[label], _RUNS[count].start, _RUNS[count].start + 1)
                    for label, count in _LABEL_COUNTS.items()),
    **{f"tag_{name}": _TAG[name] for name in ("label", "roman", "code_keyword", "from", "select", "sql_clause")},
    "wide_view": _VIEW["wide"],
    "latex_commands": _LATEX_COMMANDS, "symbols_only": _SYMBOLS_ONLY, "curly_quotes": _CURLY, "counts": Counts,
}  # fmt: skip


def _load_measurer():  # type: ignore[no-untyped-def]
    native = load("measure") if ENGINE == "c" else None
    if native is None:
        return None
    try:
        return native.Measurer(_SCANNER, _LAYOUT)
    except (TypeError, ValueError) as exc:  # a build that does not match this file: keep the gateway up
        logging.getLogger(__name__).warning("C measurements unusable (%s); using the Python ones", exc)
        return None


_MEASURER = _load_measurer()
MEASURE_ENGINE = "python" if _MEASURER is None else "c"
measure = measure_python if _MEASURER is None else _MEASURER.measure
