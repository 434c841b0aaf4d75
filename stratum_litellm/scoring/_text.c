/*
 * The learned part of a score in C: stratum_litellm.scoring.text._hashes and _contribution.
 * The Python module is the spec; this one gives the same results, bit for bit (tests compare
 * the two on arbitrary text and weight tables). It saves the regular expression, the
 * per-token strings and bytes, and the interpreter's loop over the features.
 *
 * hashes(lowered, max_tokens) -> list[int]: text._hashes(lowered) when max_tokens is
 * text.MAX_TOKENS. Like the spec it does not lower-case: the caller passes str.lower()'s text.
 * Tokens are runs of characters with Py_UNICODE_ISALNUM (what `[^\W_]` matches in Python's
 * re, and str.isalnum per character), except that each one in the CJK ranges of text._CJK is
 * a token of its own and ends any run; only the first max_tokens count. The features: each
 * token's CRC-32 (zlib's) of its UTF-8 bytes, then, for each adjacent pair, the CRC-32 of
 * "first second", computed as zlib.crc32(b" " + second, crc_of_first) is.
 *
 * contribution(lowered, weights, mask, max_tokens) -> float: text._contribution(lowered,
 * weights, mask): the sum, in double and in the features' order, of weights[hash & mask]
 * (a buffer of C floats, e.g. array('f'), of at least mask + 1), divided by the square root of
 * the number of features; 0.0 without features.
 *
 * The text is read in place (no copy, no UTF-8 encoding: the code points are encoded into the
 * CRC on the fly), and the scan stops after max_tokens tokens; the only memory it takes is two
 * arrays of 32-bit hashes, of min(max_tokens, len(text)) each.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

/* A bound on max_tokens: the scorer reads 400; anything much larger is a mistake. */
#define MOST_TOKENS (1 << 16)
/* Up to this many tokens, the hashes are kept on the stack. */
#define ON_STACK 512

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static uint32_t crc_table[256];         /* zlib's CRC-32: reflected, polynomial 0xEDB88320 */
static unsigned char alnum_latin1[256]; /* Py_UNICODE_ISALNUM of the code points below 256 */

static void make_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
        alnum_latin1[n] = Py_UNICODE_ISALNUM((Py_UCS4)n) ? 1 : 0;
    }
}

/* The CRC register after one more byte (the register is the CRC-32 inverted: zlib.crc32(data,
   value) starts from ~value and returns the register inverted). */
static ALWAYS_INLINE uint32_t crc_byte(uint32_t reg, unsigned char byte) {
    return crc_table[(reg ^ byte) & 0xFF] ^ (reg >> 8);
}

/* The register after the UTF-8 bytes of c (never a surrogate: those are not alnum). */
static ALWAYS_INLINE uint32_t crc_char(uint32_t reg, Py_UCS4 c) {
    if (c < 0x80) return crc_byte(reg, (unsigned char)c);
    if (c < 0x800) {
        reg = crc_byte(reg, (unsigned char)(0xC0 | (c >> 6)));
    } else {
        if (c < 0x10000) {
            reg = crc_byte(reg, (unsigned char)(0xE0 | (c >> 12)));
        } else {
            reg = crc_byte(reg, (unsigned char)(0xF0 | (c >> 18)));
            reg = crc_byte(reg, (unsigned char)(0x80 | ((c >> 12) & 0x3F)));
        }
        reg = crc_byte(reg, (unsigned char)(0x80 | ((c >> 6) & 0x3F)));
    }
    return crc_byte(reg, (unsigned char)(0x80 | (c & 0x3F)));
}

/* text._CJK: kana, CJK ideographs (with extension A and the compatibility ones), hangul
   syllables, and the supplementary ideographic plane (U+20000 to U+2FFFF; the tertiary one,
   from U+30000, is not in it: its letters make runs). */
static ALWAYS_INLINE int is_cjk(Py_UCS4 c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x20000 && c <= 0x2FFFF);
}

static ALWAYS_INLINE int is_alnum(int kind, Py_UCS4 c) {
    if (kind == PyUnicode_1BYTE_KIND || c < 256) return alnum_latin1[c & 0xFF];
    return Py_UNICODE_ISALNUM(c);
}

/* The hashes of the first `most` tokens of data (of `kind`, `length` code points): the
   unigrams into uni, the bigrams into bi (one fewer); the number of tokens. Written once
   and made into one loop per kind by the compiler (the kind is a constant where it is
   inlined), so the 1-byte text reads its characters without a switch. */
static ALWAYS_INLINE Py_ssize_t scan(int kind, const void *data, Py_ssize_t length, Py_ssize_t most, uint32_t *uni,
                                     uint32_t *bi) {
    Py_ssize_t n = 0;
    int in_run = 0;
    uint32_t reg = 0, pair = 0; /* the registers of the token, and of " " + token after the one before */
    if (most == 0) return 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (!is_alnum(kind, c)) {
            if (in_run) {
                in_run = 0;
                uni[n] = ~reg;
                if (n > 0) bi[n - 1] = ~pair;
                if (++n == most) return n;
            }
            continue;
        }
        int single = kind != PyUnicode_1BYTE_KIND && is_cjk(c);
        if (in_run && single) { /* a CJK character ends the run before it */
            in_run = 0;
            uni[n] = ~reg;
            if (n > 0) bi[n - 1] = ~pair;
            if (++n == most) return n;
        }
        if (!in_run) {
            in_run = 1;
            reg = 0xFFFFFFFFu;
            if (n > 0) pair = crc_byte(~uni[n - 1], ' ');
        }
        reg = crc_char(reg, c);
        if (n > 0) pair = crc_char(pair, c);
        if (single) {
            in_run = 0;
            uni[n] = ~reg;
            if (n > 0) bi[n - 1] = ~pair;
            if (++n == most) return n;
        }
    }
    if (in_run) {
        uni[n] = ~reg;
        if (n > 0) bi[n - 1] = ~pair;
        n++;
    }
    return n;
}

static Py_ssize_t scan_text(PyObject *text, Py_ssize_t most, uint32_t *uni, uint32_t *bi) {
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND:
        return scan(PyUnicode_1BYTE_KIND, data, length, most, uni, bi);
    case PyUnicode_2BYTE_KIND:
        return scan(PyUnicode_2BYTE_KIND, data, length, most, uni, bi);
    default:
        return scan(PyUnicode_4BYTE_KIND, data, length, most, uni, bi);
    }
}

/* The hashes of a text: two arrays of min(max_tokens, len(text)) entries, on the stack where they fit. */
typedef struct {
    uint32_t *uni, *bi;
    Py_ssize_t n; /* tokens: n unigrams, then n - 1 bigrams (none without tokens) */
    uint32_t stack[2 * ON_STACK];
    uint32_t *heap;
} Hashes;

static void hashes_free(Hashes *h) {
    PyMem_Free(h->heap);
    h->heap = NULL;
}

/* Checks the arguments (text: a str; max_tokens: an int in [0, MOST_TOKENS]) and fills h;
   -1 with an exception set on failure (nothing then to free). */
static int hash_text(PyObject *text, PyObject *max_tokens, const char *function, Hashes *h) {
    h->heap = NULL;
    h->n = 0;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s() takes a str, not %.100s", function, Py_TYPE(text)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) return -1; /* (a legacy string; every str is ready from 3.12 on) */
#endif
    if (!PyLong_Check(max_tokens)) {
        PyErr_Format(PyExc_TypeError, "%s(): max_tokens must be an int, not %.100s", function,
                     Py_TYPE(max_tokens)->tp_name);
        return -1;
    }
    int overflow;
    long long most = PyLong_AsLongLongAndOverflow(max_tokens, &overflow);
    if (most == -1 && PyErr_Occurred()) return -1;
    if (overflow || most < 0 || most > MOST_TOKENS) {
        PyErr_Format(PyExc_ValueError, "%s(): max_tokens must be between 0 and %d", function, MOST_TOKENS);
        return -1;
    }
    /* No more tokens than characters. */
    Py_ssize_t room = PyUnicode_GET_LENGTH(text) < most ? PyUnicode_GET_LENGTH(text) : (Py_ssize_t)most;
    if (room <= ON_STACK) {
        h->uni = h->stack;
        h->bi = h->stack + ON_STACK;
    } else {
        if (!(h->heap = PyMem_Malloc(2 * (size_t)room * sizeof(uint32_t)))) {
            PyErr_NoMemory();
            return -1;
        }
        h->uni = h->heap;
        h->bi = h->heap + room;
    }
    h->n = scan_text(text, room, h->uni, h->bi);
    return 0;
}

static PyObject *hashes(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "hashes(lowered, max_tokens) takes 2 arguments");
        return NULL;
    }
    Hashes h;
    if (hash_text(args[0], args[1], "hashes", &h) < 0) return NULL;
    Py_ssize_t n = h.n, features = n ? 2 * n - 1 : 0;
    PyObject *list = PyList_New(features);
    for (Py_ssize_t i = 0; list && i < features; i++) {
        PyObject *value = PyLong_FromUnsignedLong(i < n ? h.uni[i] : h.bi[i - n]);
        if (!value) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, value);
    }
    hashes_free(&h);
    return list;
}

/* A buffer format of one native C float: "f", or "f" after a byte-order mark that means this
   machine's order. */
static int is_float_format(const char *format) {
    if (!format) return 0; /* (requested with PyBUF_FORMAT: NULL would mean bytes) */
    if (format[0] == '@' || format[0] == '=') format++;
#if PY_BIG_ENDIAN
    else if (format[0] == '>' || format[0] == '!') format++;
#else
    else if (format[0] == '<') format++;
#endif
    return format[0] == 'f' && format[1] == '\0';
}

static PyObject *contribution(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "contribution(lowered, weights, mask, max_tokens) takes 4 arguments");
        return NULL;
    }
    PyObject *weights = args[1], *mask_arg = args[2];
    if (!PyLong_Check(mask_arg)) {
        PyErr_Format(PyExc_TypeError, "contribution(): mask must be an int, not %.100s", Py_TYPE(mask_arg)->tp_name);
        return NULL;
    }
    int overflow;
    long long mask = PyLong_AsLongLongAndOverflow(mask_arg, &overflow);
    if (mask == -1 && PyErr_Occurred()) return NULL;
    if (overflow < 0 || (!overflow && mask < 0)) {
        PyErr_SetString(PyExc_ValueError, "contribution(): mask must not be negative");
        return NULL;
    }
    if (!PyObject_CheckBuffer(weights)) {
        PyErr_Format(PyExc_TypeError, "contribution(): weights must be a buffer of C floats (array('f')), not %.100s",
                     Py_TYPE(weights)->tp_name);
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(weights, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    PyObject *result = NULL;
    if (view.ndim != 1 || view.itemsize != (Py_ssize_t)sizeof(float) || !is_float_format(view.format)) {
        PyErr_Format(PyExc_TypeError,
                     "contribution(): weights must be a one-dimensional buffer of C floats (format 'f', "
                     "e.g. array('f')), not format '%s' with %zd-byte items in %d dimensions",
                     view.format ? view.format : "B", view.itemsize, view.ndim);
        goto done;
    }
    Py_ssize_t size = view.len / view.itemsize;
    if (overflow > 0 || mask >= size) {
        PyErr_Format(PyExc_ValueError, "contribution(): mask %R needs a table of mask + 1 weights; this one has %zd",
                     mask_arg, size);
        goto done;
    }
    Hashes h;
    if (hash_text(args[0], args[3], "contribution", &h) < 0) goto done;
    const float *w = (const float *)view.buf;
    /* (mask < size, so a hash & mask is an index; the hashes are 32-bit, the mask maybe wider) */
    uint64_t m = (uint64_t)mask;
    Py_ssize_t n = h.n, features = n ? 2 * n - 1 : 0;
    double total = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) total += (double)w[h.uni[i] & m];
    for (Py_ssize_t i = 0; i + 1 < n; i++) total += (double)w[h.bi[i] & m];
    hashes_free(&h);
    result = PyFloat_FromDouble(features ? total / sqrt((double)features) : 0.0);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"hashes", (PyCFunction)(void (*)(void))hashes, METH_FASTCALL,
     "hashes(lowered: str, max_tokens: int) -> list[int]: see stratum_litellm.scoring.text._hashes"},
    {"contribution", (PyCFunction)(void (*)(void))contribution, METH_FASTCALL,
     "contribution(lowered: str, weights: buffer of floats, mask: int, max_tokens: int) -> float: "
     "see stratum_litellm.scoring.text._contribution"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_text", .m_doc = "The learned part of a score's features, in C.", .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__text(void) {
    make_tables();
    return PyModule_Create(&module);
}
