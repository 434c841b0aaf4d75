"""Raw, explainable measurements of one piece of text, used by :mod:`stratum_litellm.scoring.scorer`.

Speed is the point of this module's shape. A regex with many alternatives costs tens of
nanoseconds per character in CPython, so the text is measured as UTF-8 *bytes*, through
a few views that a 256-byte table and a set of deleted bytes define (as ``bytes.translate``
does), all counted in one call of the scan engine (:mod:`stratum_litellm.scoring.scan`, in C
where it was built, else in Python, with the same results):

- words: punctuation to spaces, upper to lower case, then every word looked up in the
  vocabulary of the hand-written lists of ``data/lexicon.json``; a list counts *distinct*
  words, so repetition does not inflate it. Phrases count when all their content words occur.
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

import json
import logging
import re
from importlib import resources

from .scan import ENGINE, Scanner, View
from .native import load

__all__ = ["FIELDS", "MEASURE_ENGINE", "measure", "measure_python"]

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
    text = resources.files("stratum_litellm.scoring").joinpath("data/lexicon.json").read_text(encoding="utf-8")
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
# word -> the fields whose list holds it: the tags the scan engine counts per distinct word.
_FIELDS_OF: dict[bytes, tuple[int, ...]] = {
    w: tuple(index for index, lex in _WORD_LISTS if w in lex) for w in _ALL_WORDS
}
_CODE_KEYWORDS = frozenset(w.encode() for w in _LEX["code_keywords"])  # words prose does not use
_LABELS = frozenset(w.encode() for w in _LEX["enumeration_labels"])

# Phrases match when all their content words occur, anywhere in the text: "how many",
# "write a function", "step by step". Order is ignored on purpose: it costs a text search
# per phrase, and on the labelled data adjacency bought nothing over co-occurrence.
_FUNCTION_WORDS = frozenset(
    b"the a an of to in on at by for is are was be it this that what how no not and or as so if do does".split()
)
_PHRASES: list[tuple[frozenset[bytes], tuple[int, ...]]] = []  # (content words, fields)


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
    _PHRASES.extend(fields_of.items())


_index_phrases()
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
_LABEL_NEEDLES = {label: (label + b" 1", label + b" 2") for label in _LABELS}
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
    _ALL_WORDS | _GROUP_WORDS | _LABELS | _CODE_KEYWORDS | _SQL_WORDS | _SQL_CLAUSES | _ROMAN_WORDS
)
# LaTeX commands, counted where a backslash starts one that no lower-case letter follows
# (the pattern starts with a literal backslash, so the scan skips fast).
_LATEX_COMMANDS = (b"frac", b"sqrt", b"sum", b"int", b"cdot", b"times", b"le", b"leq", b"ge", b"geq", b"ne", b"neq",
                   b"pi", b"alpha", b"beta", b"theta", b"lambda", b"infty", b"mathbb", b"partial", b"lim", b"log",
                   b"binom")  # fmt: skip
_LATEX_RE = re.compile(rb"\\(?:" + b"|".join(_LATEX_COMMANDS) + rb")(?![a-z])")

_OPERATORS = frozenset(b"=+*/^<>")
_CODE_CHARS = frozenset(b"=-:&|+<>(_`{;")


# Field indices, resolved once.
_TOKENS, _SENTENCES, _QUESTIONS, _MATH_NOTATION, _NUMBERS, _RELATIONS, _CODE_SYNTAX, _ENUMERATIONS, _ENTITIES = (
    _I[f]
    for f in ("tokens", "sentences", "questions", "math_notation", "numbers", "relations", "code_syntax",
              "enumerations", "entities")
)


# --------------------------------------------------------------------------- the scan

# Every count measure() needs, taken in one engine call (see bytescan). Each view lists its
# needles and byte classes; _AT[(view, needle)] is where a count lands in the flat list.
_SENTENCE_ENDS = b".!?"
_VIEW_SPECS: tuple[tuple[str, View], ...] = (
    ("raw", View(needles=(b"```", b"__", b"SELECT ", b" FROM ") + _ROMAN + _CJK_STOPS  # 。！？ (？ is also the question count)
                 + _MATH_UNICODE_BYTES)),
    ("head", View(limit=_ENTITY_WINDOW, needles=(b" I ",))),  # "I" is not a proper noun
    ("case", View(table=_CASE_SHAPE, limit=_ENTITY_WINDOW, needles=(_PROPER_SHAPE,))),
    ("sym", View(delete=_SYMBOLS_ONLY, needles=(b"?", b"%", b"\\", b"`", b"*", b"_"),
                 classes=(_SENTENCE_ENDS, bytes(sorted(_OPERATORS)), bytes(sorted(_CODE_CHARS))))),
    ("fold", View(table=_FOLD_CODE, delete=_SYMBOLS_ONLY, needles=_CODE_SYMBOLS + (b"{\n", b";\n"))),
    ("low", View(table=_WORDS, needles=tuple(n for label in sorted(_LABELS) for n in _LABEL_NEEDLES[label]))),
    ("numbers", View(delete=_NUMBERS_ONLY)),
    ("digits", View(table=_DIGIT_SHAPE, delete=_DIGIT_SHAPE_DELETE, needles=_LIST_SHAPES + _MATH_SHAPES + (b"0/0",))),
    ("wide", View(delete=_NOT_WIDE_LEAD)),
)
_VIEW = {name: i for i, (name, _) in enumerate(_VIEW_SPECS)}
_AT: dict[tuple[str, bytes], int] = {}
for _position, (_name, _needle) in enumerate(
    (name, n) for name, view in _VIEW_SPECS for n in (*view.needles, *view.classes)
):
    _AT.setdefault((_name, _needle), _position)

# Tags of vocabulary words: the field of each word list, word groups of their own, and one
# tag per enumeration label (whether that label occurs).
_T_CODE_KEYWORD, _T_SQL_CLAUSE, _T_ROMAN, _T_FROM, _T_SELECT, _T_LABEL = range(_N, _N + 6)
_T_EACH_LABEL = {label: _T_LABEL + 1 + i for i, label in enumerate(sorted(_LABELS))}
_VOCABULARY: dict[bytes, tuple[int, ...]] = {word: () for word in _INTERESTING}
_VOCABULARY.update(_FIELDS_OF)
for _tag, _words in ((_T_CODE_KEYWORD, _CODE_KEYWORDS), (_T_SQL_CLAUSE, _SQL_CLAUSES), (_T_ROMAN, _ROMAN_WORDS),
                     (_T_FROM, _SQL_FROM), (_T_SELECT, _SQL_VERBS), (_T_LABEL, _LABELS)):
    for _word in _words:
        _VOCABULARY[_word] += (_tag,)
for _word, _tag in _T_EACH_LABEL.items():
    _VOCABULARY[_word] += (_tag,)
_SCANNER_SPEC = {
    "views": [v for _, v in _VIEW_SPECS],
    "vocabulary": _VOCABULARY,
    "tags": _T_LABEL + 1 + len(_LABELS),
    "words_view": _VIEW["low"],
    "distinct_view": _VIEW["numbers"],
    "phrases": [(sorted(words), fields) for words, fields in _PHRASES],
}
_SCANNER = Scanner(**_SCANNER_SPEC)


def _slice(view: str, needles: tuple[bytes, ...]) -> slice:
    """Where a run of needles, listed in that order in their view, lands in the counts."""
    first = _AT[(view, needles[0])]
    assert all(_AT[(view, n)] == first + i for i, n in enumerate(needles)), (view, needles)
    return slice(first, first + len(needles))


_C_FENCE, _C_DUNDER, _C_SELECT, _C_FROM = (_AT[("raw", n)] for n in (b"```", b"__", b"SELECT ", b" FROM "))
_S_ROMAN = _slice("raw", _ROMAN)
_S_CJK_STOPS = _slice("raw", _CJK_STOPS)
_C_CJK_QUESTION = _AT[("raw", _CJK_QUESTION)]
_S_MATH_UNICODE = _slice("raw", _MATH_UNICODE_BYTES)
_C_HEAD_I = _AT[("head", b" I ")]
_C_PROPER = _AT[("case", _PROPER_SHAPE)]
_C_QUESTION, _C_PERCENT, _C_BACKSLASH, _C_BACKTICK, _C_STAR, _C_UNDERSCORE = (
    _AT[("sym", n)] for n in (b"?", b"%", b"\\", b"`", b"*", b"_"))
_C_SENTENCE_ENDS, _C_OPERATORS, _C_CODE_CHARS = (
    _AT[("sym", n)] for n in (_SENTENCE_ENDS, bytes(sorted(_OPERATORS)), bytes(sorted(_CODE_CHARS))))
_C_BRACE_NL, _C_SEMI_NL = _AT[("fold", b"{\n")], _AT[("fold", b";\n")]  # the fold keeps { ; and newlines
_S_CODE_SYMBOLS = _slice("fold", _CODE_SYMBOLS)
# (tag of the label, where "label 1" and "label 2" are counted)
_C_LABELS = tuple((_T_EACH_LABEL[label], _AT[("low", one)], _AT[("low", two)])
                  for label, (one, two) in sorted(_LABEL_NEEDLES.items()))
_S_LIST_SHAPES = _slice("digits", _LIST_SHAPES)
_S_MATH_SHAPES = _slice("digits", _MATH_SHAPES)
_C_FRACTION = _AT[("digits", b"0/0")]
_L_WIDE = _VIEW["wide"]


# --------------------------------------------------------------------------- measure


def measure_python(text: str) -> list[float]:
    """Counts of every field in FIELDS for ``text`` (all zero for empty text).

    The reference for the C measurements (``_measure.c``), which give the same list.
    """
    if not text:
        return [0.0] * _N
    n = len(text)
    b = text.encode("utf-8", "replace")  # 'replace': lone surrogates must not raise
    ascii_only = len(b) == n
    curly = 0
    if not ascii_only:
        for quote in _CURLY:  # typographic apostrophes join words as "'" does
            if quote in b:
                curly += b.count(quote)
                b = b.replace(quote, b"'")
    c, lengths, tags, numerals = _SCANNER.scan(b)
    m: list[float] = tags[:_N]  # the word lists' fields (distinct words), plus their phrases
    wide = lengths[_L_WIDE] + curly  # a curly quote is a 3-byte character too
    m[_TOKENS] = wide + (n - wide) / 4.0

    # Sentences and questions from the text's symbols.
    questions = c[_C_QUESTION]
    sentences = c[_C_SENTENCE_ENDS]
    if wide:
        questions += c[_C_CJK_QUESTION]
        sentences += sum(c[_S_CJK_STOPS])
    m[_SENTENCES] = sentences or 1
    m[_QUESTIONS] = questions
    m[_NUMBERS] = numerals  # distinct numerals, "1,200" read as 1200

    # Labelled items ("statement 1", "step 3"), lists at line starts, roman numerals.
    enumerations = sum(c[_S_LIST_SHAPES])
    if tags[_T_LABEL]:
        for tag, one, two in _C_LABELS:
            if tags[tag]:
                enumerations += c[one] + c[two]
    if tags[_T_ROMAN]:  # I. II. III. statements
        enumerations += sum(c[_S_ROMAN])
    m[_ENUMERATIONS] = enumerations

    # Math: operators between numbers (digit shape), LaTeX commands, math symbols.
    math = sum(c[_S_MATH_SHAPES]) if c[_C_OPERATORS] else 0
    if c[_C_BACKSLASH]:
        math += len(_LATEX_RE.findall(b))
    if not ascii_only:
        math += sum(c[_S_MATH_UNICODE])
    m[_MATH_NOTATION] = math
    if c[_C_PERCENT]:
        m[_RELATIONS] += 1
    if c[_C_FRACTION]:
        m[_RELATIONS] += 1
    m[_ENTITIES] = max(0, c[_C_PROPER] - c[_C_HEAD_I])

    code = 2 * tags[_T_CODE_KEYWORD]
    if tags[_T_FROM] and tags[_T_SELECT]:
        # SQL in upper case, or lower case with a clause prose rarely has ("select ... from" is prose too).
        if c[_C_SELECT] or c[_C_FROM]:
            code += 4
        elif tags[_T_SQL_CLAUSE] or c[_C_STAR]:
            code += 2
    if c[_C_CODE_CHARS]:
        code += sum(c[_S_CODE_SYMBOLS]) + c[_C_BRACE_NL]  # blocks open at line ends; LaTeX braces do not
        if c[_C_BACKTICK]:
            code += 3 * c[_C_FENCE]
        # Statements end lines; prose puts semicolons mid-line.
        # (The symbols view ends with ";" when the text does, past what the view deletes.)
        code += c[_C_SEMI_NL] + b.rstrip(_SYMBOLS_ONLY).endswith(b";")
        if c[_C_UNDERSCORE]:  # snake_case, not fill-in-the-blank "_____" runs
            code += max(0, c[_C_UNDERSCORE] - 2 * c[_C_DUNDER])
    m[_CODE_SYNTAX] = code
    return m


# The same measurements in C (_measure.c), from the C scan engine's results in place: the
# lines above cost more than the scan of a 2,000-character text once they run in Python.
_LAYOUT = {
    "fields": _N, "tokens": _TOKENS, "sentences": _SENTENCES, "questions": _QUESTIONS, "numbers": _NUMBERS,
    "enumerations": _ENUMERATIONS, "math_notation": _MATH_NOTATION, "relations": _RELATIONS, "entities": _ENTITIES,
    "code_syntax": _CODE_SYNTAX,
    # counts
    "question": _C_QUESTION, "sentence_ends": _C_SENTENCE_ENDS, "cjk_question": _C_CJK_QUESTION,
    "cjk_stops": _S_CJK_STOPS, "list_shapes": _S_LIST_SHAPES, "roman": _S_ROMAN, "math_shapes": _S_MATH_SHAPES,
    "operators": _C_OPERATORS, "backslash": _C_BACKSLASH, "math_unicode": _S_MATH_UNICODE, "percent": _C_PERCENT,
    "fraction": _C_FRACTION, "proper": _C_PROPER, "head_i": _C_HEAD_I, "select": _C_SELECT, "from": _C_FROM,
    "star": _C_STAR, "code_chars": _C_CODE_CHARS, "code_symbols": _S_CODE_SYMBOLS, "brace_nl": _C_BRACE_NL,
    "backtick": _C_BACKTICK, "fence": _C_FENCE, "semi_nl": _C_SEMI_NL, "underscore": _C_UNDERSCORE,
    "dunder": _C_DUNDER, "labels": _C_LABELS,
    # tags, the view of wide characters, and the texts the measurements look for themselves
    "tag_label": _T_LABEL, "tag_roman": _T_ROMAN, "tag_code_keyword": _T_CODE_KEYWORD, "tag_from": _T_FROM,
    "tag_select": _T_SELECT, "tag_sql_clause": _T_SQL_CLAUSE, "wide_view": _L_WIDE,
    "latex_commands": _LATEX_COMMANDS, "symbols_only": _SYMBOLS_ONLY, "curly_quotes": _CURLY,
}  # fmt: skip


def _load_measurer():  # type: ignore[no-untyped-def]
    native = load("_measure") if ENGINE == "c" else None
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
