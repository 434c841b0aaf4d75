/*
 * The scorer's measurements of one text in C: measure.measure_python, line for line,
 * reading the C scan engine's results in place (through the capsule of _bytescan_api.h)
 * instead of as Python lists. Tests compare the two on arbitrary texts.
 *
 * Measurer(scanner, layout): `layout` (measure._LAYOUT, derived from the Python
 * declarations) says by name where each count, field and tag the measurements read lands in
 * the scan's results; a name missing, or one this file does not read, is refused, so the two
 * sides cannot drift apart. measure(text) returns the list of FIELDS, ints except the token
 * estimate (a float), all 0.0 for an empty text, as a measure.Counts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <string.h>

#include "_bytescan_api.h"

static const BytescanAPI *api;

#define MAX_FIELDS 64 /* the scorer has 23 */

typedef struct {
    Py_ssize_t start, stop;
} Range;

typedef struct {
    PyObject_HEAD
    PyObject *scanner;
    Py_ssize_t n_counts, n_views, n_tags, n_results;
    /* Fields of the result. */
    Py_ssize_t fields, tokens, sentences, questions, numbers, enumerations, math_notation, relations, entities,
        code_syntax;
    /* Counts of the scan. */
    Py_ssize_t question, sentence_ends, cjk_question, operators, backslash, percent, fraction, proper, head_i,
        select, from, star, code_chars, brace_nl, backtick, fence, semi_nl, underscore, dunder;
    Range cjk_stops, list_shapes, roman, math_shapes, math_unicode, code_symbols;
    Py_ssize_t n_labels;
    Py_ssize_t (*labels)[3]; /* (tag of the label, count of "label 1", count of "label 2") */
    /* Tags, and the view of wide characters. */
    Py_ssize_t tag_label, tag_roman, tag_code_keyword, tag_from, tag_select, tag_sql_clause, wide_view;
    PyObject *latex_commands, *curly_quotes; /* tuples of bytes */
    PyTypeObject *counts;                    /* the result's type: a tuple of FIELDS (measure.Counts) */
    unsigned char symbols_only[256];         /* 1: a byte the symbols view deletes */
} Measurer;

enum Kind { FIELD, COUNT, TAG, VIEW };

typedef struct {
    const char *name;
    size_t offset;
    enum Kind kind;
} Entry;

#define AT(member) offsetof(Measurer, member)
static const Entry INDICES[] = {
    {"tokens", AT(tokens), FIELD}, {"sentences", AT(sentences), FIELD}, {"questions", AT(questions), FIELD},
    {"numbers", AT(numbers), FIELD}, {"enumerations", AT(enumerations), FIELD},
    {"math_notation", AT(math_notation), FIELD}, {"relations", AT(relations), FIELD},
    {"entities", AT(entities), FIELD}, {"code_syntax", AT(code_syntax), FIELD},
    {"question", AT(question), COUNT}, {"sentence_ends", AT(sentence_ends), COUNT},
    {"cjk_question", AT(cjk_question), COUNT}, {"operators", AT(operators), COUNT},
    {"backslash", AT(backslash), COUNT}, {"percent", AT(percent), COUNT}, {"fraction", AT(fraction), COUNT},
    {"proper", AT(proper), COUNT}, {"head_i", AT(head_i), COUNT}, {"select", AT(select), COUNT},
    {"from", AT(from), COUNT}, {"star", AT(star), COUNT}, {"code_chars", AT(code_chars), COUNT},
    {"brace_nl", AT(brace_nl), COUNT}, {"backtick", AT(backtick), COUNT}, {"fence", AT(fence), COUNT},
    {"semi_nl", AT(semi_nl), COUNT}, {"underscore", AT(underscore), COUNT}, {"dunder", AT(dunder), COUNT},
    {"tag_label", AT(tag_label), TAG}, {"tag_roman", AT(tag_roman), TAG},
    {"tag_code_keyword", AT(tag_code_keyword), TAG}, {"tag_from", AT(tag_from), TAG},
    {"tag_select", AT(tag_select), TAG}, {"tag_sql_clause", AT(tag_sql_clause), TAG},
    {"wide_view", AT(wide_view), VIEW},
};
static const Entry RANGES[] = {
    {"cjk_stops", AT(cjk_stops), COUNT}, {"list_shapes", AT(list_shapes), COUNT}, {"roman", AT(roman), COUNT},
    {"math_shapes", AT(math_shapes), COUNT}, {"math_unicode", AT(math_unicode), COUNT},
    {"code_symbols", AT(code_symbols), COUNT},
};
#undef AT

static Py_ssize_t bound_of(const Measurer *self, enum Kind kind) {
    return kind == FIELD ? self->fields : kind == COUNT ? self->n_counts : kind == TAG ? self->n_tags : self->n_views;
}

/* The layout's names read other than through INDICES and RANGES. */
static const char *const OTHER_NAMES[] = {"fields", "labels", "latex_commands", "curly_quotes", "symbols_only",
                                          "counts"};

static int is_read(PyObject *key) {
    const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
    if (!name) {
        PyErr_Clear();
        return 0;
    }
    for (size_t e = 0; e < sizeof(INDICES) / sizeof(INDICES[0]); e++)
        if (strcmp(name, INDICES[e].name) == 0) return 1;
    for (size_t e = 0; e < sizeof(RANGES) / sizeof(RANGES[0]); e++)
        if (strcmp(name, RANGES[e].name) == 0) return 1;
    for (size_t e = 0; e < sizeof(OTHER_NAMES) / sizeof(OTHER_NAMES[0]); e++)
        if (strcmp(name, OTHER_NAMES[e]) == 0) return 1;
    return 0;
}

/* layout[name], which must exist. */
static PyObject *item(PyObject *layout, const char *name) {
    PyObject *value = PyDict_GetItemString(layout, name);
    if (!value) PyErr_Format(PyExc_ValueError, "measure layout: no %s", name);
    return value;
}

static int index_of(PyObject *value, Py_ssize_t bound, const char *name, Py_ssize_t *out) {
    Py_ssize_t i = PyLong_Check(value) ? PyLong_AsSsize_t(value) : -1;
    if (i == -1 && PyErr_Occurred()) return -1;
    if (i < 0 || i >= bound) {
        PyErr_Format(PyExc_ValueError, "measure layout: %s must be an index below %zd", name, bound);
        return -1;
    }
    *out = i;
    return 0;
}

static int tuple_of_bytes(PyObject *value, const char *name, PyObject **out) {
    if (!PyTuple_Check(value)) goto bad;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); i++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(value, i)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(value, i)) == 0) goto bad;
    Py_INCREF(value);
    *out = value;
    return 0;
bad:
    PyErr_Format(PyExc_ValueError, "measure layout: %s must be a tuple of non-empty bytes", name);
    return -1;
}

static int read_layout(Measurer *self, PyObject *layout) {
    PyObject *value, *key;
    Py_ssize_t pos = 0;
    while (PyDict_Next(layout, &pos, &key, &value)) {
        if (!is_read(key)) {
            PyErr_Format(PyExc_ValueError, "measure layout: %R is not read by this build", key);
            return -1;
        }
    }
    if (!(value = item(layout, "fields"))) return -1;
    Py_ssize_t most = self->n_tags < MAX_FIELDS ? self->n_tags : MAX_FIELDS;
    if (index_of(value, most + 1, "fields", &self->fields) < 0) return -1;
    for (size_t e = 0; e < sizeof(INDICES) / sizeof(INDICES[0]); e++) {
        if (!(value = item(layout, INDICES[e].name))) return -1;
        Py_ssize_t *into = (Py_ssize_t *)((char *)self + INDICES[e].offset);
        if (index_of(value, bound_of(self, INDICES[e].kind), INDICES[e].name, into) < 0) return -1;
    }
    for (size_t e = 0; e < sizeof(RANGES) / sizeof(RANGES[0]); e++) {
        if (!(value = item(layout, RANGES[e].name))) return -1;
        Range *into = (Range *)((char *)self + RANGES[e].offset);
        Py_ssize_t step;
        if (!PySlice_Check(value) || PySlice_Unpack(value, &into->start, &into->stop, &step) < 0 || step != 1 ||
            into->start < 0 || into->stop < into->start || into->stop > self->n_counts) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "measure layout: %s must be a slice of the counts", RANGES[e].name);
            return -1;
        }
    }
    if (!(value = item(layout, "labels"))) return -1;
    if (!PyTuple_Check(value)) {
        PyErr_SetString(PyExc_ValueError, "measure layout: labels must be a tuple of (tag, count, count)");
        return -1;
    }
    self->n_labels = PyTuple_GET_SIZE(value);
    if (!(self->labels = PyMem_Calloc(self->n_labels + 1, sizeof(*self->labels)))) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->n_labels; i++) {
        PyObject *label = PyTuple_GET_ITEM(value, i);
        if (!PyTuple_Check(label) || PyTuple_GET_SIZE(label) != 3) {
            PyErr_SetString(PyExc_ValueError, "measure layout: labels must be a tuple of (tag, count, count)");
            return -1;
        }
        if (index_of(PyTuple_GET_ITEM(label, 0), self->n_tags, "a label's tag", &self->labels[i][0]) < 0 ||
            index_of(PyTuple_GET_ITEM(label, 1), self->n_counts, "a label's count", &self->labels[i][1]) < 0 ||
            index_of(PyTuple_GET_ITEM(label, 2), self->n_counts, "a label's count", &self->labels[i][2]) < 0)
            return -1;
    }
    if (!(value = item(layout, "latex_commands")) || tuple_of_bytes(value, "latex_commands", &self->latex_commands) < 0)
        return -1;
    if (!(value = item(layout, "curly_quotes")) || tuple_of_bytes(value, "curly_quotes", &self->curly_quotes) < 0)
        return -1;
    if (!(value = item(layout, "counts"))) return -1;
    if (!PyType_Check(value) || !PyType_IsSubtype((PyTypeObject *)value, &PyTuple_Type)) {
        PyErr_SetString(PyExc_ValueError, "measure layout: counts must be a subclass of tuple");
        return -1;
    }
    Py_INCREF(value);
    self->counts = (PyTypeObject *)value;
    if (!(value = item(layout, "symbols_only"))) return -1;
    if (!PyBytes_Check(value)) {
        PyErr_SetString(PyExc_ValueError, "measure layout: symbols_only must be bytes");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(value); i++)
        self->symbols_only[(unsigned char)PyBytes_AS_STRING(value)[i]] = 1;
    return 0;
}

static int Measurer_init(Measurer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"scanner", "layout", NULL};
    PyObject *scanner, *layout;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!", kwlist, api->scanner_type, &scanner, &PyDict_Type, &layout))
        return -1;
    if (self->scanner || self->labels || self->latex_commands || self->curly_quotes || self->counts) { /* (a failed one too) */
        PyErr_SetString(PyExc_RuntimeError, "Measurer is already initialised");
        return -1;
    }
    if (api->sizes(scanner, &self->n_counts, &self->n_views, &self->n_tags, &self->n_results) < 0) return -1;
    if (read_layout(self, layout) < 0) return -1;
    Py_INCREF(scanner);
    self->scanner = scanner;
    return 0;
}

static void Measurer_dealloc(Measurer *self) {
    Py_XDECREF(self->scanner);
    Py_XDECREF(self->latex_commands);
    Py_XDECREF(self->curly_quotes);
    Py_XDECREF(self->counts);
    PyMem_Free(self->labels);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t sum_of(const Py_ssize_t *counts, Range r) {
    Py_ssize_t total = 0;
    for (Py_ssize_t i = r.start; i < r.stop; i++) total += counts[i];
    return total;
}

/* len(_LATEX_RE.findall(b)): backslashes that start one of the commands with no lower-case
   letter after it. (Which command matches cannot change the count: a match takes only
   letters after its backslash, so the next match starts at a later backslash anyway.) */
static Py_ssize_t latex_count(const Measurer *self, const unsigned char *b, Py_ssize_t n) {
    Py_ssize_t found = 0;
    const unsigned char *p = b, *end = b + n;
    while ((p = memchr(p, '\\', end - p)) != NULL) {
        p++;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(self->latex_commands); k++) {
            PyObject *command = PyTuple_GET_ITEM(self->latex_commands, k);
            Py_ssize_t len = PyBytes_GET_SIZE(command);
            if (len <= end - p && memcmp(p, PyBytes_AS_STRING(command), len) == 0 &&
                (p + len == end || p[len] < 'a' || p[len] > 'z')) {
                found++;
                break;
            }
        }
    }
    return found;
}

/* b.rstrip(symbols_only).endswith(b";") */
static int ends_with_semicolon(const Measurer *self, const unsigned char *b, Py_ssize_t n) {
    while (n > 0 && self->symbols_only[b[n - 1]]) n--;
    return n > 0 && b[n - 1] == ';';
}

/* The length of the typographic quote p starts with (n bytes readable), or 0. */
static Py_ssize_t quote_at(const Measurer *self, const unsigned char *p, Py_ssize_t n) {
    for (Py_ssize_t q = 0; q < PyTuple_GET_SIZE(self->curly_quotes); q++) {
        PyObject *quote = PyTuple_GET_ITEM(self->curly_quotes, q);
        Py_ssize_t len = PyBytes_GET_SIZE(quote);
        if (len <= n && memcmp(p, PyBytes_AS_STRING(quote), len) == 0) return len;
    }
    return 0;
}

/* The UTF-8 text with each typographic quote replaced by "'", into out (NUL-terminated,
   as long as b plus one); the number replaced. (One pass replaces what consecutive
   bytes.replace calls do: the quotes are whole UTF-8 characters, which cannot overlap.) */
static Py_ssize_t replace_quotes(const Measurer *self, const unsigned char *b, Py_ssize_t n, unsigned char *out,
                                 Py_ssize_t *out_n) {
    Py_ssize_t replaced = 0, k = 0;
    for (Py_ssize_t i = 0; i < n;) {
        Py_ssize_t len = b[i] >= 0x80 ? quote_at(self, b + i, n - i) : 0; /* the quotes are not ASCII */
        if (len) {
            out[k++] = '\'';
            i += len;
            replaced++;
        } else {
            out[k++] = b[i++];
        }
    }
    out[k] = 0;
    *out_n = k;
    return replaced;
}

/* A Counts of the values (all 0.0 when values is NULL), allocated as tuple subclasses are. */
static PyObject *new_counts(const Measurer *self, const Py_ssize_t *values, double tokens) {
    PyObject *counts = self->counts->tp_alloc(self->counts, self->fields);
    if (!counts) return NULL;
    for (Py_ssize_t i = 0; i < self->fields; i++) {
        PyObject *value = !values ? PyFloat_FromDouble(0.0)
                          : i == self->tokens ? PyFloat_FromDouble(tokens) : PyLong_FromSsize_t(values[i]);
        if (!value) {
            Py_DECREF(counts);
            return NULL;
        }
        PyTuple_SET_ITEM(counts, i, value);
    }
    return counts;
}

/* The lines of measure_python, in its order. */
static PyObject *measured(const Measurer *self, const unsigned char *b, Py_ssize_t size, Py_ssize_t chars,
                          int ascii_only, Py_ssize_t curly, const Py_ssize_t *out, Py_ssize_t numerals) {
    const Py_ssize_t *c = out, *lengths = out + self->n_counts, *tags = lengths + self->n_views;
    Py_ssize_t m[MAX_FIELDS];
    memcpy(m, tags, self->fields * sizeof(Py_ssize_t));
    Py_ssize_t wide = lengths[self->wide_view] + curly;
    double tokens = (double)wide + (double)(chars - wide) / 4.0;

    Py_ssize_t questions = c[self->question], sentences = c[self->sentence_ends];
    if (wide) {
        questions += c[self->cjk_question];
        sentences += sum_of(c, self->cjk_stops) + c[self->cjk_question];
    }
    m[self->sentences] = sentences ? sentences : 1;
    m[self->questions] = questions;
    m[self->numbers] = numerals;

    Py_ssize_t enumerations = sum_of(c, self->list_shapes);
    if (tags[self->tag_label])
        for (Py_ssize_t i = 0; i < self->n_labels; i++)
            if (tags[self->labels[i][0]]) enumerations += c[self->labels[i][1]] + c[self->labels[i][2]];
    if (tags[self->tag_roman]) enumerations += sum_of(c, self->roman);
    m[self->enumerations] = enumerations;

    Py_ssize_t math = c[self->operators] ? sum_of(c, self->math_shapes) : 0;
    if (c[self->backslash]) math += latex_count(self, b, size);
    if (!ascii_only) math += sum_of(c, self->math_unicode);
    m[self->math_notation] = math;
    if (c[self->percent]) m[self->relations] += 1;
    if (c[self->fraction]) m[self->relations] += 1;
    Py_ssize_t entities = c[self->proper] - c[self->head_i];
    m[self->entities] = entities > 0 ? entities : 0;

    Py_ssize_t code = 2 * tags[self->tag_code_keyword];
    if (tags[self->tag_from] && tags[self->tag_select]) {
        if (c[self->select] || c[self->from])
            code += 4;
        else if (tags[self->tag_sql_clause] || c[self->star])
            code += 2;
    }
    if (c[self->code_chars]) {
        code += sum_of(c, self->code_symbols) + c[self->brace_nl];
        if (c[self->backtick]) code += 3 * c[self->fence];
        code += c[self->semi_nl] + ends_with_semicolon(self, b, size);
        if (c[self->underscore]) {
            Py_ssize_t snake = c[self->underscore] - 2 * c[self->dunder];
            code += snake > 0 ? snake : 0;
        }
    }
    m[self->code_syntax] = code;
    return new_counts(self, m, tokens);
}

static PyObject *Measurer_measure(Measurer *self, PyObject *text) {
    if (!self->scanner) {
        PyErr_SetString(PyExc_RuntimeError, "Measurer is not initialised");
        return NULL;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "measure() takes str, not %.100s", Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return NULL; /* (a legacy string; every str is ready from 3.12 on) */
#endif
    Py_ssize_t chars = PyUnicode_GET_LENGTH(text);
    if (chars == 0) return new_counts(self, NULL, 0.0);
    /* The UTF-8 bytes: an ASCII str holds them already (NUL-terminated); other text is
       encoded as measure_python does, lone surrogates replaced. */
    PyObject *encoded = NULL, *result = NULL;
    const unsigned char *b;
    Py_ssize_t size, curly = 0;
    unsigned char *copy = NULL;
    if (PyUnicode_IS_ASCII(text)) {
        b = PyUnicode_1BYTE_DATA(text);
        size = chars;
    } else {
        if (!(encoded = PyUnicode_AsEncodedString(text, "utf-8", "replace"))) return NULL;
        b = (const unsigned char *)PyBytes_AS_STRING(encoded);
        size = PyBytes_GET_SIZE(encoded);
    }
    int ascii_only = size == chars;
    if (!ascii_only) {
        if (!(copy = PyMem_Malloc(size + 1))) {
            PyErr_NoMemory();
            goto done;
        }
        curly = replace_quotes(self, b, size, copy, &size);
        b = copy;
    }
    Py_ssize_t *out = PyMem_Calloc(self->n_results, sizeof(Py_ssize_t)), numerals = 0;
    if (!out) {
        PyErr_NoMemory();
        goto done;
    }
    if (api->scan_into(self->scanner, b, size, out, &numerals) == 0)
        result = measured(self, b, size, chars, ascii_only, curly, out, numerals);
    PyMem_Free(out);
done:
    PyMem_Free(copy);
    Py_XDECREF(encoded);
    return result;
}

static PyMethodDef Measurer_methods[] = {
    {"measure", (PyCFunction)Measurer_measure, METH_O,
     "measure(text: str) -> Counts of text (see measure.measure_python)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject MeasurerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stratum_litellm.scoring._measure.Measurer",
    .tp_doc = PyDoc_STR("Measurer(scanner, layout): see stratum_litellm.scoring.measure"),
    .tp_basicsize = sizeof(Measurer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Measurer_init,
    .tp_dealloc = (destructor)Measurer_dealloc,
    .tp_methods = Measurer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_measure", .m_doc = "The scorer's measurements of a text, in C.", .m_size = -1,
};

PyMODINIT_FUNC PyInit__measure(void) {
    /* The capsule is read from the engine's module itself: PyCapsule_Import walks the
       package's attributes, which are not set while the package is still importing. */
    PyObject *engine = PyImport_ImportModule("stratum_litellm.scoring._bytescan");
    if (!engine) return NULL;
    PyObject *capsule = PyObject_GetAttrString(engine, "_C_API");
    Py_DECREF(engine);
    if (!capsule) return NULL;
    api = (const BytescanAPI *)PyCapsule_GetPointer(capsule, BYTESCAN_API_CAPSULE);
    Py_DECREF(capsule); /* the engine's module keeps it, and the API it points at, alive */
    if (!api) return NULL;
    if (api->version != BYTESCAN_API_VERSION) {
        PyErr_Format(PyExc_ImportError, "stratum_litellm.scoring._bytescan offers API version %d, _measure needs %d",
                     api->version, BYTESCAN_API_VERSION);
        return NULL;
    }
    if (PyType_Ready(&MeasurerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&MeasurerType);
    if (PyModule_AddObject(m, "Measurer", (PyObject *)&MeasurerType) < 0) {
        Py_DECREF(&MeasurerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
