/*
 * The C engine of stratum_litellm.scoring.scan: the same results as scan.PyScanner, with
 * at most one pass per view and no Python object for a word that is not in the vocabulary.
 *
 * Semantics kept identical to the Python engine (tests compare them on arbitrary inputs):
 * - a view is data[:limit] with `delete` bytes removed and the rest mapped through `table`
 *   (bytes.translate(table, delete));
 * - needles are counted like bytes.count: leftmost first, non-overlapping, each needle on
 *   its own; a class counts the view's bytes that are any of its bytes;
 * - words are split like bytes.split(): on runs of the six ASCII blanks " \t\n\v\f\r".
 *
 * Where the work goes: one pass over the input takes its histogram and the compaction that
 * several views share; one-byte needles, classes, view lengths and how often each view's
 * anchor bytes occur come from that histogram (no pass over the view); a view is written out
 * only when it has longer needles whose anchors occur, or is the words or distinct view;
 * longer needles are found in one pass per view that stops at the anchor bytes (a needle's
 * rarest byte); the words view is written and split in one pass, and its words are looked
 * up in batches that fetch their memory ahead (see look_up_batch).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_bytescan_api.h"

#define INLINE_NEEDLE 16
typedef struct {
    const unsigned char *bytes; /* `text`, or the bytes object's for a longer needle */
    Py_ssize_t len;
    Py_ssize_t anchor;         /* offset of its rarest byte, where the search finds it */
    unsigned char text[INLINE_NEEDLE]; /* the needle, next to the others: compared without
                                          reading its bytes object (a wait on memory when cold) */
} Needle;

/* A set of input bytes whose histogram counts add up to one result (a one-byte needle, a
   class, or the view's length). */
typedef struct {
    short n;
    unsigned char bytes[256];
} ByteSet;

typedef struct {
    unsigned char table[256];
    unsigned char keep[256];
    int identity;              /* nothing deleted, nothing mapped: the view is the input */
    int deletes;               /* some bytes are deleted (keep[c] == 0 for some c) */
    Py_ssize_t limit;          /* -1: no limit */
    Py_ssize_t first;          /* the view's first result in the flat counts */
    Py_ssize_t n_needles;      /* its needles, then its classes, follow in the counts */
    Py_ssize_t n_classes;
    ByteSet length;            /* the deleted bytes (length = m - sum) or the kept ones */
    int length_from_kept;
    Py_ssize_t n_sets;         /* one-byte needles and classes: counts[first + set_at[i]] */
    Py_ssize_t *set_at;
    ByteSet *sets;
    Py_ssize_t n_long;         /* longer needles, grouped by anchor byte: */
    Needle *longs;             /* bucket[c]..bucket[c+1] index longs[] and long_at[] */
    Py_ssize_t *long_at;
    Py_ssize_t bucket[257];
    char anchors[257];         /* the anchor bytes, NUL-terminated, for strcspn */
    unsigned char is_anchor[256];
    ByteSet anchor_set;        /* the input bytes the view maps to an anchor byte */
    int compacted;             /* written out from the shared compaction (see Scanner) */
} ViewSpec;

/* A vocabulary word. A lookup reads one slot, one cache line: the word's first bytes and
   its tags are kept here, so that neither the bytes object nor the tags pool is read for
   most words (between two requests the gateway's other work evicts them from the caches,
   and each is then a wait on memory). */
#define INLINE_WORD 16
#define INLINE_TAGS 4
typedef struct {
    PyObject *word;            /* NULL: empty slot */
    uint64_t seen;             /* the scan that last found it: found once per scan */
    Py_ssize_t phrases_at;     /* into Scanner.phrase_index: the phrases keyed on it */
    int32_t len, tags_at;      /* its length; its tags in Scanner.tags if it has more than INLINE_TAGS */
    int16_t n_tags, n_phrases;
    uint16_t inline_tags[INLINE_TAGS]; /* its tags, if it has at most INLINE_TAGS */
    unsigned char text[INLINE_WORD];   /* its first bytes, zero-padded */
} Slot;

/* A phrase counts (adds its tags) when all its words occur in the text, in any order. */
typedef struct {
    Py_ssize_t words_at, n_words; /* into Scanner.phrase_words */
    Py_ssize_t tags_at, n_tags;   /* into Scanner.tags */
} Phrase;

typedef struct {
    PyObject_HEAD
    int ready;                 /* initialised, and successfully: scans may run */
    Py_ssize_t n_views;
    ViewSpec *views;
    Py_ssize_t n_counts;
    PyObject *keep_alive;      /* the bytes objects that needles point into */
    Py_ssize_t words_view;
    Py_ssize_t distinct_view;
    Py_ssize_t n_tag_kinds;
    size_t vocab_mask;         /* open addressing, size a power of two */
    void *vocab_block;         /* the allocation vocab is aligned in */
    uint16_t *probe;           /* per slot: 0 if empty, else a 16-bit tag of the word's hash.
                                  Lookups walk this small array, not the slots: between two
                                  requests the gateway's other work evicts it from the
                                  caches, and each of its lines a request touches is then a
                                  memory read (16 KB for 4,000 words) */
    Slot *vocab;
    Py_ssize_t n_word_tags;    /* the tags pool: the words' tags, then the phrases' */
    Py_ssize_t *tags;
    Py_ssize_t n_phrases;
    Phrase *phrases;
    Slot **phrase_words;
    Py_ssize_t *phrase_index;
    uint64_t scans;
    /* Views that delete a common set of bytes (letters, say) are written out from one
       compaction of the input that drops that set first: several short passes instead of
       several full ones. */
    unsigned char compact_keep[256];
} Scanner;

/* The per-word lookup sits in the hottest loop, where a call costs a third of it; the
   vocabulary's memory is fetched ahead of the lookups (see look_up_batch). */
#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define PREFETCH(address) __builtin_prefetch(address)
#else
#define ALWAYS_INLINE inline
#define PREFETCH(address) ((void)0)
#endif

static const unsigned char BLANK[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1};

/* The next word of p[0:n] from *at on, as bytes.split() cuts them: its start, or -1 when
   there is none; *at moves past it. */
static inline Py_ssize_t next_word(const unsigned char *p, Py_ssize_t n, Py_ssize_t *at) {
    Py_ssize_t i = *at;
    while (i < n && BLANK[p[i]]) i++;
    if (i == n) return *at = n, -1;
    Py_ssize_t start = i;
    while (i < n && !BLANK[p[i]]) i++;
    *at = i;
    return start;
}

/* Hash of a short byte string: its first and last 8 bytes and its length, mixed. Words
   are short, so this costs a few instructions where a byte-at-a-time hash costs dozens.
   `p` must be readable 8 bytes past p + n (words are read from a padded buffer). */
#define PAD 8
static inline uint64_t word_hash(const unsigned char *p, Py_ssize_t n) {
    uint64_t a, b = 0;
    memcpy(&a, p, 8);
    if (n >= 8) {
        memcpy(&b, p + n - 8, 8);
    } else {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        a &= ~(~(uint64_t)0 >> (8 * n)); /* keep the first n bytes */
#else
        a &= ~(~(uint64_t)0 << (8 * n));
#endif
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)n) * 0xFF51AFD7ED558CCDULL;
    return h ^ (h >> 29);
}

static void Scanner_dealloc(Scanner *self) {
    if (self->views) {
        for (Py_ssize_t i = 0; i < self->n_views; i++) {
            ViewSpec *v = &self->views[i];
            PyMem_Free(v->set_at);
            PyMem_Free(v->sets);
            PyMem_Free(v->longs);
            PyMem_Free(v->long_at);
        }
        PyMem_Free(self->views);
    }
    if (self->vocab) {
        for (size_t i = 0; i <= self->vocab_mask; i++) Py_XDECREF(self->vocab[i].word);
        PyMem_Free(self->vocab_block);
    }
    PyMem_Free(self->probe);
    PyMem_Free(self->tags);
    PyMem_Free(self->phrases);
    PyMem_Free(self->phrase_words);
    PyMem_Free(self->phrase_index);
    Py_XDECREF(self->keep_alive);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The input bytes that view v keeps and maps into `targets`. */
static void preimage(const ViewSpec *v, const unsigned char *targets, Py_ssize_t n, ByteSet *out) {
    unsigned char wanted[256] = {0};
    for (Py_ssize_t i = 0; i < n; i++) wanted[targets[i]] = 1;
    out->n = 0;
    for (int c = 0; c < 256; c++)
        if (v->keep[c] && wanted[v->table[c]]) out->bytes[out->n++] = (unsigned char)c;
}

/* How common a byte is in everyday text, roughly (higher: rarer). Needles are searched by
   their rarest byte, so the search stops at few positions; any choice gives the same counts. */
static int rarity(unsigned char c) {
    if (c == ' ') return 0;
    if (c >= 'a' && c <= 'z') return 1;
    if (c == '.' || c == ',' || c == '\n') return 2;
    if (c >= '0' && c <= '9') return 3;
    if (c >= 'A' && c <= 'Z') return 4;
    if (c == 0) return -1; /* an anchor only in a needle of NULs: strcspn stops at NUL anyway */
    return 5;
}

static Py_ssize_t anchor_of(const unsigned char *needle, Py_ssize_t len) {
    Py_ssize_t best = 0;
    for (Py_ssize_t i = 1; i < len; i++)
        if (rarity(needle[i]) > rarity(needle[best])) best = i;
    return best;
}

static int init_view(Scanner *self, Py_ssize_t index, PyObject *spec) {
    ViewSpec *v = &self->views[index];
    PyObject *seq = PySequence_Fast(spec, "a view must be a sequence (table, delete, limit, needles, classes)");
    PyObject *needles = NULL, *classes = NULL;
    int rc = -1;
    if (!seq) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 5) {
        PyErr_Format(PyExc_ValueError, "view %zd must have 5 fields (table, delete, limit, needles, classes)", index);
        goto done;
    }
    PyObject *table = PySequence_Fast_GET_ITEM(seq, 0), *del = PySequence_Fast_GET_ITEM(seq, 1);
    PyObject *limit = PySequence_Fast_GET_ITEM(seq, 2);
    v->identity = 1;
    for (int c = 0; c < 256; c++) v->table[c] = (unsigned char)c, v->keep[c] = 1;
    if (table != Py_None) {
        if (!PyBytes_Check(table) || PyBytes_GET_SIZE(table) != 256) {
            PyErr_Format(PyExc_ValueError, "view %zd: the table must be 256 bytes", index);
            goto done;
        }
        memcpy(v->table, PyBytes_AS_STRING(table), 256);
        v->identity = 0;
    }
    if (!PyBytes_Check(del)) {
        PyErr_Format(PyExc_TypeError, "view %zd: delete must be bytes", index);
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(del); i++) {
        v->keep[(unsigned char)PyBytes_AS_STRING(del)[i]] = 0;
        v->identity = 0;
        v->deletes = 1;
    }
    v->limit = -1;
    if (limit != Py_None) {
        v->limit = PyLong_AsSsize_t(limit);
        if (v->limit == -1 && PyErr_Occurred()) goto done;
        if (v->limit < 0) {
            PyErr_Format(PyExc_ValueError, "view %zd: limit must be >= 0", index);
            goto done;
        }
    }
    short kept = 0;
    for (int c = 0; c < 256; c++) kept += v->keep[c];
    v->length_from_kept = kept <= 128;
    for (int c = 0; c < 256; c++)
        if (v->keep[c] == v->length_from_kept) v->length.bytes[v->length.n++] = (unsigned char)c;

    needles = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, 3), "needles must be a sequence of bytes");
    classes = needles ? PySequence_Fast(PySequence_Fast_GET_ITEM(seq, 4), "classes must be a sequence of bytes") : NULL;
    if (!classes) goto done;
    v->n_needles = PySequence_Fast_GET_SIZE(needles);
    v->n_classes = PySequence_Fast_GET_SIZE(classes);
    v->first = self->n_counts;
    self->n_counts += v->n_needles + v->n_classes;
    Py_ssize_t slots = v->n_needles + v->n_classes + 1;
    v->set_at = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    v->sets = PyMem_Calloc(slots, sizeof(ByteSet));
    v->longs = PyMem_Calloc(slots, sizeof(Needle));
    v->long_at = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    if (!v->set_at || !v->sets || !v->longs || !v->long_at) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t per_byte[257] = {0};
    for (Py_ssize_t i = 0; i < v->n_needles; i++) {
        PyObject *needle = PySequence_Fast_GET_ITEM(needles, i);
        if (!PyBytes_Check(needle) || PyBytes_GET_SIZE(needle) == 0) {
            PyErr_Format(PyExc_ValueError, "view %zd: needles must be non-empty bytes", index);
            goto done;
        }
        const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(needle);
        if (PyBytes_GET_SIZE(needle) == 1) {
            preimage(v, bytes, 1, &v->sets[v->n_sets]);
            v->set_at[v->n_sets++] = i;
            continue;
        }
        if (PyList_Append(self->keep_alive, needle) < 0) goto done;
        per_byte[bytes[anchor_of(bytes, PyBytes_GET_SIZE(needle))] + 1]++;
    }
    for (Py_ssize_t i = 0; i < v->n_classes; i++) {
        PyObject *cls = PySequence_Fast_GET_ITEM(classes, i);
        if (!PyBytes_Check(cls)) {
            PyErr_Format(PyExc_TypeError, "view %zd: classes must be bytes", index);
            goto done;
        }
        preimage(v, (const unsigned char *)PyBytes_AS_STRING(cls), PyBytes_GET_SIZE(cls), &v->sets[v->n_sets]);
        v->set_at[v->n_sets++] = v->n_needles + i;
    }
    for (int c = 0; c < 256; c++) per_byte[c + 1] += per_byte[c];
    memcpy(v->bucket, per_byte, sizeof(per_byte));
    for (Py_ssize_t i = 0; i < v->n_needles; i++) {
        PyObject *needle = PySequence_Fast_GET_ITEM(needles, i);
        const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(needle);
        if (PyBytes_GET_SIZE(needle) == 1) continue;
        Py_ssize_t anchor = anchor_of(bytes, PyBytes_GET_SIZE(needle));
        Py_ssize_t at = per_byte[bytes[anchor]]++;
        v->longs[at].bytes = bytes;
        if (PyBytes_GET_SIZE(needle) <= INLINE_NEEDLE) {
            memcpy(v->longs[at].text, bytes, PyBytes_GET_SIZE(needle));
            v->longs[at].bytes = v->longs[at].text;
        }
        v->longs[at].len = PyBytes_GET_SIZE(needle);
        v->longs[at].anchor = anchor;
        v->long_at[at] = i;
        v->n_long++;
    }
    int n_anchors = 0;
    for (int c = 0; c < 256; c++) {
        if (v->bucket[c + 1] == v->bucket[c]) continue;
        v->is_anchor[c] = 1;
        if (c) v->anchors[n_anchors++] = (char)c;
    }
    v->anchors[n_anchors] = 0;
    preimage(v, (const unsigned char *)v->anchors, n_anchors, &v->anchor_set);
    if (v->is_anchor[0]) { /* a needle anchored on NUL: count the input bytes the view maps to NUL too */
        ByteSet nul;
        preimage(v, (const unsigned char *)"", 1, &nul);
        for (short i = 0; i < nul.n; i++) v->anchor_set.bytes[v->anchor_set.n++] = nul.bytes[i];
    }
    /* Needles of NUL bytes only are anchored on NUL, which is not in anchors[]: strcspn
       stops at every NUL byte of the view anyway. */
    rc = 0;
done:
    Py_DECREF(seq);
    Py_XDECREF(needles);
    Py_XDECREF(classes);
    return rc;
}

/* Whether p[0:n] equals the needle: needles are short, and most candidates differ at the
   first byte compared, so a loop beats a call to memcmp. */
static inline int matches(const unsigned char *p, const unsigned char *needle, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] != needle[i]) return 0;
    return 1;
}

static inline uint16_t probe_tag(uint64_t h) { return (uint16_t)(h >> 48) | 1; }

/* Where p[0:n] (hash h) is in the vocabulary, or the empty slot where it would go. Only
   the probe array is read until a tag matches. */
static inline size_t locate_from(const Scanner *self, const unsigned char *p, Py_ssize_t n, uint64_t h, size_t from) {
    uint16_t tag = probe_tag(h);
    for (size_t i = from;; i = (i + 1) & self->vocab_mask) {
        uint16_t t = self->probe[i];
        if (!t) return i;
        if (t == tag) {
            const Slot *slot = &self->vocab[i];
            if (slot->len == n && (n <= INLINE_WORD ? matches(p, slot->text, n)
                                                    : memcmp(PyBytes_AS_STRING(slot->word), p, n) == 0))
                return i;
        }
    }
}

static inline size_t locate(const Scanner *self, const unsigned char *p, Py_ssize_t n, uint64_t h) {
    return locate_from(self, p, n, h, (size_t)h & self->vocab_mask);
}

/* The vocabulary's slot for p[0:n], or NULL, probing from slot `from` on. */
static inline Slot *find_word(const Scanner *self, const unsigned char *p, Py_ssize_t n, uint64_t h, size_t from) {
    size_t i = locate_from(self, p, n, h, from);
    return self->probe[i] ? &self->vocab[i] : NULL;
}

/* word_hash of a bytes object (copied into a padded buffer: the hash reads 8 bytes). */
static int hash_of(PyObject *word, uint64_t *out) {
    Py_ssize_t len = PyBytes_GET_SIZE(word);
    unsigned char *padded = PyMem_Calloc(len + PAD, 1);
    if (!padded) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(padded, PyBytes_AS_STRING(word), len);
    *out = word_hash(padded, len);
    PyMem_Free(padded);
    return 0;
}

static int init_vocabulary(Scanner *self, PyObject *vocabulary) {
    PyObject *items = PyMapping_Items(vocabulary);
    if (!items) return -1;
    int rc = -1;
    Py_ssize_t n = PyList_GET_SIZE(items), total_tags = 0;
    size_t size = 16;
    while (size < (size_t)n + (size_t)n / 2 + 2) size <<= 1; /* at most 2/3 full */
    self->vocab_mask = size - 1;
    /* Slots aligned on cache lines (64 bytes): a lookup then reads one line, not two. */
    self->vocab_block = PyMem_Calloc(size * sizeof(Slot) + 64, 1);
    if (self->vocab_block) self->vocab = (Slot *)(((uintptr_t)self->vocab_block + 63) & ~(uintptr_t)63);
    self->probe = PyMem_Calloc(size, sizeof(uint16_t));
    if (!self->vocab || !self->probe) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *tags = PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1);
        Py_ssize_t k = PyObject_Length(tags);
        if (k < 0) goto done;
        total_tags += k;
    }
    self->n_word_tags = total_tags; /* the tags pool holds the words' tags first */
    self->tags = PyMem_Calloc(total_tags + 1, sizeof(Py_ssize_t));
    if (!self->tags) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 0);
        PyObject *tags = PySequence_Fast(PyTuple_GET_ITEM(PyList_GET_ITEM(items, i), 1), "tags must be a sequence");
        if (!tags) goto done;
        if (!PyBytes_Check(word) || PyBytes_GET_SIZE(word) == 0 || PyBytes_GET_SIZE(word) > INT32_MAX) {
            Py_DECREF(tags);
            PyErr_SetString(PyExc_TypeError, "vocabulary words must be non-empty bytes");
            goto done;
        }
        uint64_t h;
        if (hash_of(word, &h) < 0) {
            Py_DECREF(tags);
            goto done;
        }
        size_t index = locate(self, (const unsigned char *)PyBytes_AS_STRING(word), PyBytes_GET_SIZE(word), h);
        Slot *slot = &self->vocab[index];
        if (!self->probe[index]) {
            Py_INCREF(word);
            slot->word = word;
            slot->len = (int32_t)PyBytes_GET_SIZE(word);
            memcpy(slot->text, PyBytes_AS_STRING(word), slot->len < INLINE_WORD ? slot->len : INLINE_WORD);
            self->probe[index] = probe_tag(h);
        }
        if (PySequence_Fast_GET_SIZE(tags) > INT16_MAX || at > INT32_MAX) {
            Py_DECREF(tags);
            PyErr_SetString(PyExc_ValueError, "too many vocabulary tags");
            goto done;
        }
        slot->tags_at = (int32_t)at;
        slot->n_tags = (int16_t)PySequence_Fast_GET_SIZE(tags);
        for (Py_ssize_t j = 0; j < slot->n_tags; j++) {
            Py_ssize_t tag = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(tags, j));
            if (tag < 0 || tag >= self->n_tag_kinds || tag > UINT16_MAX) {
                Py_DECREF(tags);
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "vocabulary tags must be in [0, %zd)", self->n_tag_kinds);
                goto done;
            }
            if (j < INLINE_TAGS) slot->inline_tags[j] = (uint16_t)tag;
            self->tags[at++] = tag;
        }
        Py_DECREF(tags);
    }
    rc = 0;
done:
    Py_DECREF(items);
    return rc;
}

/* Phrases: each is (words, tags); its words must be in the vocabulary. A phrase is keyed on
   its longest word (the rarest, roughly): only phrases whose key word occurs are checked. */
static int init_phrases(Scanner *self, PyObject *phrases) {
    PyObject *seq = PySequence_Fast(phrases, "phrases must be a sequence of (words, tags)");
    if (!seq) return -1;
    int rc = -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), total_words = 0, total_tags = 0;
    if (n > INT16_MAX) { /* (a slot counts the phrases keyed on it in 16 bits) */
        Py_DECREF(seq);
        PyErr_Format(PyExc_ValueError, "at most %d phrases", INT16_MAX);
        return -1;
    }
    PyObject **parts = PyMem_Calloc(2 * n + 1, sizeof(PyObject *)); /* words, tags of each */
    Py_ssize_t *keys = PyMem_Calloc(n + 1, sizeof(Py_ssize_t));
    self->phrases = PyMem_Calloc(n + 1, sizeof(Phrase));
    if (!parts || !keys || !self->phrases) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast(PySequence_Fast_GET_ITEM(seq, i), "a phrase must be (words, tags)");
        if (!pair) goto done;
        if (PySequence_Fast_GET_SIZE(pair) != 2) {
            Py_DECREF(pair);
            PyErr_SetString(PyExc_ValueError, "a phrase must be (words, tags)");
            goto done;
        }
        parts[2 * i] = PySequence_Fast(PySequence_Fast_GET_ITEM(pair, 0), "phrase words must be a sequence");
        parts[2 * i + 1] = parts[2 * i] ? PySequence_Fast(PySequence_Fast_GET_ITEM(pair, 1), "phrase tags must be a sequence") : NULL;
        Py_DECREF(pair);
        if (!parts[2 * i + 1]) goto done;
        if (PySequence_Fast_GET_SIZE(parts[2 * i]) == 0) {
            PyErr_SetString(PyExc_ValueError, "a phrase needs at least one word");
            goto done;
        }
        total_words += PySequence_Fast_GET_SIZE(parts[2 * i]);
        total_tags += PySequence_Fast_GET_SIZE(parts[2 * i + 1]);
    }
    Py_ssize_t *tags = PyMem_Realloc(self->tags, (self->n_word_tags + total_tags + 1) * sizeof(Py_ssize_t));
    if (!tags) {
        PyErr_NoMemory();
        goto done;
    }
    self->tags = tags;
    self->phrase_words = PyMem_Calloc(total_words + 1, sizeof(Slot *));
    self->phrase_index = PyMem_Calloc(n + 1, sizeof(Py_ssize_t));
    if (!self->phrase_words || !self->phrase_index) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t tag_at = self->n_word_tags, word_at = 0; /* phrases' tags follow the words' */
    for (Py_ssize_t i = 0; i < n; i++) {
        Phrase *ph = &self->phrases[i];
        PyObject *words = parts[2 * i], *ptags = parts[2 * i + 1];
        ph->words_at = word_at;
        ph->n_words = PySequence_Fast_GET_SIZE(words);
        Py_ssize_t key = -1, key_len = -1;
        for (Py_ssize_t j = 0; j < ph->n_words; j++) {
            PyObject *word = PySequence_Fast_GET_ITEM(words, j);
            if (!PyBytes_Check(word)) {
                PyErr_SetString(PyExc_TypeError, "phrase words must be bytes");
                goto done;
            }
            Py_ssize_t len = PyBytes_GET_SIZE(word);
            uint64_t h;
            if (hash_of(word, &h) < 0) goto done;
            Slot *slot = find_word(self, (const unsigned char *)PyBytes_AS_STRING(word), len, h,
                                   (size_t)h & self->vocab_mask);
            if (!slot) {
                PyErr_Format(PyExc_ValueError, "phrase word %R is not in the vocabulary", word);
                goto done;
            }
            self->phrase_words[word_at++] = slot;
            if (len > key_len) key = slot - self->vocab, key_len = len;
        }
        keys[i] = key;
        self->vocab[key].n_phrases++;
        ph->tags_at = tag_at;
        ph->n_tags = PySequence_Fast_GET_SIZE(ptags);
        for (Py_ssize_t j = 0; j < ph->n_tags; j++) {
            Py_ssize_t tag = PyLong_AsSsize_t(PySequence_Fast_GET_ITEM(ptags, j));
            if (tag < 0 || tag >= self->n_tag_kinds) {
                if (!PyErr_Occurred())
                    PyErr_Format(PyExc_ValueError, "phrase tags must be in [0, %zd)", self->n_tag_kinds);
                goto done;
            }
            self->tags[tag_at++] = tag;
        }
    }
    /* phrase_index: each key slot's phrases, contiguous */
    Py_ssize_t at = 0;
    for (size_t i = 0; i <= self->vocab_mask; i++) {
        self->vocab[i].phrases_at = at;
        at += self->vocab[i].n_phrases;
        self->vocab[i].n_phrases = 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Slot *key = &self->vocab[keys[i]];
        self->phrase_index[key->phrases_at + key->n_phrases++] = i;
    }
    self->n_phrases = n;
    rc = 0;
done:
    if (parts)
        for (Py_ssize_t i = 0; i < 2 * n; i++) Py_XDECREF(parts[i]);
    PyMem_Free(parts);
    PyMem_Free(keys);
    Py_DECREF(seq);
    return rc;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"views", "vocabulary", "tags", "words_view", "distinct_view", "phrases", NULL};
    PyObject *views, *vocabulary, *phrases = NULL;
    Py_ssize_t tags = 0, words_view = -1, distinct_view = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|nnnO", kwlist, &views, &vocabulary, &tags, &words_view,
                                     &distinct_view, &phrases))
        return -1;
    if (self->views) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is already initialised");
        return -1;
    }
    PyObject *vseq = PySequence_Fast(views, "views must be a sequence");
    if (!vseq) return -1;
    int rc = -1;
    self->keep_alive = PyList_New(0);
    if (!self->keep_alive) goto done;
    self->n_views = PySequence_Fast_GET_SIZE(vseq);
    self->n_tag_kinds = tags;
    if (tags < 0 || words_view < -1 || words_view >= self->n_views || distinct_view < -1 ||
        distinct_view >= self->n_views) {
        PyErr_Format(PyExc_ValueError, "tags must be >= 0, words_view and distinct_view -1 or a view index below %zd",
                     self->n_views);
        goto done;
    }
    self->words_view = words_view;
    self->distinct_view = distinct_view;
    self->views = PyMem_Calloc(self->n_views ? self->n_views : 1, sizeof(ViewSpec));
    if (!self->views) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < self->n_views; i++)
        if (init_view(self, i, PySequence_Fast_GET_ITEM(vseq, i)) < 0) goto done;
    if (init_vocabulary(self, vocabulary) < 0) goto done;
    if (phrases && init_phrases(self, phrases) < 0) goto done;
    /* Shared compaction: worth it when two or more whole-input views that are written out
       all delete some bytes. */
    unsigned char common[256];
    memset(common, 1, sizeof(common));
    int candidates = 0;
    for (Py_ssize_t i = 0; i < self->n_views; i++) {
        ViewSpec *v = &self->views[i];
        int written = v->n_long || i == words_view || i == distinct_view;
        int deletes = 0;
        for (int c = 0; c < 256; c++) deletes |= !v->keep[c];
        if (!written || v->limit != -1 || !deletes) continue;
        v->compacted = 1; /* a candidate, confirmed below */
        candidates++;
        for (int c = 0; c < 256; c++) common[c] &= !v->keep[c];
    }
    int common_bytes = 0;
    for (int c = 0; c < 256; c++) common_bytes += common[c];
    for (int c = 0; c < 256; c++) self->compact_keep[c] = !common[c];
    if (candidates < 2 || !common_bytes)
        for (Py_ssize_t i = 0; i < self->n_views; i++) self->views[i].compacted = 0;
    self->ready = 1;
    rc = 0;
done:
    Py_DECREF(vseq);
    return rc;
}

/* Distinct words of p[0:n]: a throwaway open-addressing set of (offset, length). */
static Py_ssize_t count_distinct(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t words = 0;
    for (Py_ssize_t i = 0; next_word(p, n, &i) >= 0;) words++;
    if (words < 2) return words;
    size_t size = 16;
    while (size < 2 * (size_t)words) size <<= 1;
    typedef struct {
        uint64_t hash;
        Py_ssize_t at, len;
    } Span;
    Span *spans = PyMem_Calloc(size, sizeof(Span));
    if (!spans) return -1;
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0, start; (start = next_word(p, n, &i)) >= 0;) {
        Py_ssize_t len = i - start;
        uint64_t h = word_hash(p + start, len);
        for (size_t s = (size_t)h & (size - 1);; s = (s + 1) & (size - 1)) {
            if (spans[s].len == 0) {
                spans[s].hash = h, spans[s].at = start, spans[s].len = len;
                distinct++;
                break;
            }
            if (spans[s].hash == h && spans[s].len == len && memcmp(p + spans[s].at, p + start, len) == 0) break;
        }
    }
    PyMem_Free(spans);
    return distinct;
}


/* The needles anchored on the byte at p[i], checked where they would start. */
static inline void check_anchor(const ViewSpec *v, const unsigned char *p, Py_ssize_t n, Py_ssize_t i,
                                Py_ssize_t *counts, Py_ssize_t *next_ok) {
    unsigned char c = p[i];
    for (Py_ssize_t j = v->bucket[c]; j < v->bucket[c + 1]; j++) {
        const Needle *nd = &v->longs[j];
        Py_ssize_t start = i - nd->anchor;
        if (start >= next_ok[j] && start >= 0 && nd->len <= n - start && matches(p + start, nd->bytes, nd->len)) {
            counts[v->long_at[j]]++;
            next_ok[j] = start + nd->len;
        }
    }
}

/* Longer needles of a view, counted in one pass over it, which stops at the anchor bytes
   (`anchors` of them in the view). Where they are sparse, strcspn (vectorised in the C
   library) skips to the next one; p[n] must then be a NUL byte, and a NUL inside the view
   only stops strcspn early, so the search resumes after it. Where they are dense
   (punctuation shapes, say), a plain loop over the bytes costs less than a call per stop. */
static void count_long_needles(const ViewSpec *v, const unsigned char *p, Py_ssize_t n, Py_ssize_t *counts,
                               Py_ssize_t *next_ok, Py_ssize_t anchors) {
    if (anchors * 16 > n) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (v->is_anchor[p[i]]) check_anchor(v, p, n, i, counts, next_ok);
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        i += (Py_ssize_t)strcspn((const char *)p + i, v->anchors);
        if (i >= n) break;
        check_anchor(v, p, n, i, counts, next_ok);
    }
}

/* A word of the words view: counts the tags of a vocabulary word, once per scan. */
static ALWAYS_INLINE void look_up(const Scanner *self, const unsigned char *word, Py_ssize_t len, uint64_t h,
                                  size_t from, Py_ssize_t *tag_counts, uint64_t scan, Slot **keys,
                                  Py_ssize_t *n_keys) {
    Slot *slot = find_word(self, word, len, h, from);
    if (!slot || slot->seen == scan) return;
    slot->seen = scan;
    if (slot->n_tags <= INLINE_TAGS)
        for (int t = 0; t < slot->n_tags; t++) tag_counts[slot->inline_tags[t]]++;
    else
        for (Py_ssize_t t = 0; t < slot->n_tags; t++) tag_counts[self->tags[slot->tags_at + t]]++;
    if (slot->n_phrases) keys[(*n_keys)++] = slot;
}

/* Words are looked up in batches. Between two requests the gateway's other work evicts
   the vocabulary from the caches, and each lookup is then a wait on memory; a batch asks
   for all its probe lines first, then for the slots whose tags match, so the waits
   overlap instead of adding up. */
#define BATCH 64
typedef struct {
    Py_ssize_t start, len;
    uint64_t hash;
    Py_ssize_t slot;           /* the first slot whose probe tag matches, or -1 */
} WordRef;

static void look_up_batch(const Scanner *self, const unsigned char *buf, WordRef *words, int n,
                          Py_ssize_t *tag_counts, uint64_t scan, Slot **keys, Py_ssize_t *n_keys) {
    for (int w = 0; w < n; w++) { /* the probe lines have been asked for: ask for the matching slots */
        uint16_t tag = probe_tag(words[w].hash);
        words[w].slot = -1;
        for (size_t i = (size_t)words[w].hash & self->vocab_mask;; i = (i + 1) & self->vocab_mask) {
            uint16_t t = self->probe[i];
            if (t == tag) {
                PREFETCH(&self->vocab[i]);
                words[w].slot = (Py_ssize_t)i;
            }
            if (!t || t == tag) break;
        }
    }
    for (int w = 0; w < n; w++) /* words whose probe met an empty slot first are not in the vocabulary */
        if (words[w].slot >= 0)
            look_up(self, buf + words[w].start, words[w].len, words[w].hash, (size_t)words[w].slot, tag_counts,
                    scan, keys, n_keys);
}

/* Writes the words view of src[0:n] into buf (NUL-terminated) and looks up each of its
   words: one pass, where writing then splitting took two. A word is hashed when the byte
   after it is written, and word_hash reads at most 8 bytes from its start, within buf's
   PAD; bytes past the end it reads are masked off. */
static ALWAYS_INLINE void write_and_look_up_as(const Scanner *self, const ViewSpec *v, const unsigned char *src,
                                                Py_ssize_t n, unsigned char *buf, Py_ssize_t *tag_counts,
                                                uint64_t scan, Slot **keys, Py_ssize_t *n_keys, const int deletes) {
    WordRef words[BATCH];
    int batched = 0;
    Py_ssize_t k = 0, start = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = src[i], t = v->table[c];
        buf[k] = t;
        if (deletes && !v->keep[c]) continue;
        if (!BLANK[t]) {
            if (start < 0) start = k;
        } else if (start >= 0) {
            uint64_t h = word_hash(buf + start, k - start);
            PREFETCH(&self->probe[(size_t)h & self->vocab_mask]);
            words[batched].start = start, words[batched].len = k - start, words[batched].hash = h;
            start = -1;
            if (++batched == BATCH) {
                look_up_batch(self, buf, words, batched, tag_counts, scan, keys, n_keys);
                batched = 0;
            }
        }
        k++;
    }
    buf[k] = 0;
    if (start >= 0) {
        words[batched].start = start, words[batched].len = k - start;
        words[batched++].hash = word_hash(buf + start, k - start);
    }
    look_up_batch(self, buf, words, batched, tag_counts, scan, keys, n_keys);
}

/* (Two copies of the loop: the words view usually deletes nothing, and then its test per
   byte of whether to keep it is wasted.) */
static void write_and_look_up(const Scanner *self, const ViewSpec *v, const unsigned char *src, Py_ssize_t n,
                              unsigned char *buf, Py_ssize_t *tag_counts, uint64_t scan, Slot **keys,
                              Py_ssize_t *n_keys) {
    if (v->deletes)
        write_and_look_up_as(self, v, src, n, buf, tag_counts, scan, keys, n_keys, 1);
    else
        write_and_look_up_as(self, v, src, n, buf, tag_counts, scan, keys, n_keys, 0);
}

/* The phrases keyed on words found, whose other words were all found too. */
static void count_phrases(const Scanner *self, Slot *const *keys, Py_ssize_t n_keys, Py_ssize_t *tag_counts,
                          uint64_t scan) {
    for (Py_ssize_t k = 0; k < n_keys; k++) {
        const Slot *key = keys[k];
        for (Py_ssize_t i = 0; i < key->n_phrases; i++) {
            const Phrase *ph = &self->phrases[self->phrase_index[key->phrases_at + i]];
            Py_ssize_t w = 0;
            while (w < ph->n_words && self->phrase_words[ph->words_at + w]->seen == scan) w++;
            if (w < ph->n_words) continue;
            for (Py_ssize_t t = 0; t < ph->n_tags; t++) tag_counts[self->tags[ph->tags_at + t]]++;
        }
    }
}

static PyObject *list_of(const Py_ssize_t *values, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyLong_FromSsize_t(values[i]);
        if (!value) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, value);
    }
    return list;
}

/* The histogram of data[0:n] and, when `compact` is given, the compaction that drops the
   bytes compact_keep[] does not keep: one pass for both. Returns the compacted length. */
static Py_ssize_t first_pass(const Scanner *self, const unsigned char *data, Py_ssize_t n, Py_ssize_t *hist,
                             unsigned char *compact) {
    memset(hist, 0, 256 * sizeof(Py_ssize_t));
    if (!compact) {
        for (Py_ssize_t i = 0; i < n; i++) hist[data[i]]++;
        return -1;
    }
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = data[i];
        hist[c]++;
        compact[k] = c;
        k += self->compact_keep[c];
    }
    return k;
}

/* first_pass, which also copies the histogram of data[0:prefix] into part on its way
   (0 < prefix < n): the views cut short need it, and a second pass over the prefix costs more. */
static Py_ssize_t first_pass_with_prefix(const Scanner *self, const unsigned char *data, Py_ssize_t n,
                                         Py_ssize_t prefix, Py_ssize_t *hist, unsigned char *compact,
                                         Py_ssize_t *part) {
    Py_ssize_t k = first_pass(self, data, prefix, hist, compact);
    memcpy(part, hist, 256 * sizeof(Py_ssize_t));
    if (!compact) {
        for (Py_ssize_t i = prefix; i < n; i++) hist[data[i]]++;
        return -1;
    }
    for (Py_ssize_t i = prefix; i < n; i++) {
        unsigned char c = data[i];
        hist[c]++;
        compact[k] = c;
        k += self->compact_keep[c];
    }
    return k;
}

/* Sum of a histogram over a set of bytes. */
static inline Py_ssize_t total_of(const Py_ssize_t *hist, const ByteSet *set) {
    Py_ssize_t total = 0;
    for (short i = 0; i < set->n; i++) total += hist[set->bytes[i]];
    return total;
}

/* Everything scan() returns, into out[] (n_counts counts, n_views view lengths, then
   n_tag_kinds tag counts; zeroed by the caller) and *distinct. data[size] must be a NUL
   byte, as it is at the end of every bytes object. Returns 0, or -1 with an exception set. */
static int scan_into(Scanner *self, const unsigned char *data, Py_ssize_t size, Py_ssize_t *out,
                     Py_ssize_t *distinct) {
    unsigned char *buf = PyMem_Malloc(size + PAD), *compact = NULL;
    Slot **keys = NULL;
    uint64_t scan = ++self->scans;
    Py_ssize_t *counts = out, *next_ok = NULL;
    Py_ssize_t *lengths = counts + self->n_counts, *tag_counts = lengths + self->n_views;
    Py_ssize_t most_long = 1, compact_n = -1;
    int rc = -1, any_compacted = 0;
    *distinct = 0;
    for (Py_ssize_t v = 0; v < self->n_views; v++) {
        if (self->views[v].n_long > most_long) most_long = self->views[v].n_long;
        any_compacted |= self->views[v].compacted;
    }
    next_ok = PyMem_Malloc(most_long * sizeof(Py_ssize_t));
    if (any_compacted) compact = PyMem_Malloc(size ? size : 1);
    if (!buf || !next_ok || (any_compacted && !compact)) {
        PyErr_NoMemory();
        goto done;
    }
    /* Histograms of the whole input and of the last shorter prefix a view asked for. */
    Py_ssize_t whole[256], part[256], part_of = -1;
    for (Py_ssize_t v = 0; v < self->n_views; v++) { /* the first view cut short, if any */
        Py_ssize_t limit = self->views[v].limit;
        if (limit > 0 && limit < size) {
            part_of = limit;
            break;
        }
    }
    compact_n = part_of > 0 ? first_pass_with_prefix(self, data, size, part_of, whole, compact, part)
                            : first_pass(self, data, size, whole, compact);
    for (Py_ssize_t v = 0; v < self->n_views; v++) {
        const ViewSpec *spec = &self->views[v];
        Py_ssize_t m = spec->limit >= 0 && spec->limit < size ? spec->limit : size;
        const Py_ssize_t *hist = whole;
        if (m < size) {
            if (part_of != m) {
                first_pass(self, data, m, part, NULL);
                part_of = m;
            }
            hist = part;
        }
        Py_ssize_t n = total_of(hist, &spec->length);
        if (!spec->length_from_kept) n = m - n;
        lengths[v] = n;
        Py_ssize_t *cnt = counts + spec->first;
        for (Py_ssize_t s = 0; s < spec->n_sets; s++) cnt[spec->set_at[s]] = total_of(hist, &spec->sets[s]);
        int words = v == self->words_view, unique = v == self->distinct_view;
        /* How often the needles' anchor bytes occur in the view: none, and there is nothing to search. */
        Py_ssize_t anchors = spec->n_long ? total_of(hist, &spec->anchor_set) : 0;
        if (!anchors && !words && !unique) continue;
        /* The view: the input itself, or written out, always followed by a NUL (strcspn)
           and readable PAD bytes past its end (word_hash). */
        const unsigned char *src = spec->compacted ? compact : data;
        Py_ssize_t src_n = spec->compacted ? compact_n : m;
        const unsigned char *p = data;
        if (words) {
            Py_ssize_t n_keys = 0;
            if (!(keys = PyMem_Malloc((self->n_phrases + 1) * sizeof(Slot *)))) {
                PyErr_NoMemory();
                goto done;
            }
            write_and_look_up(self, spec, src, src_n, buf, tag_counts, scan, keys, &n_keys);
            count_phrases(self, keys, n_keys, tag_counts, scan);
            p = buf;
        } else if (!spec->identity || unique) {
            /* (An identity view cut short needs no copy: the search stops at n, and strcspn
               at the latest at the NUL that ends the input.) */
            Py_ssize_t k = 0;
            for (Py_ssize_t i = 0; i < src_n; i++) {
                unsigned char c = src[i];
                buf[k] = spec->table[c];
                k += spec->keep[c];
            }
            buf[k] = 0;
            p = buf;
        }
        if (anchors) {
            memset(next_ok, 0, spec->n_long * sizeof(Py_ssize_t));
            count_long_needles(spec, p, n, cnt, next_ok, anchors);
        }
        if (unique && (*distinct = count_distinct(p, n)) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    rc = 0;
done:
    PyMem_Free(buf);
    PyMem_Free(compact);
    PyMem_Free(keys);
    PyMem_Free(next_ok);
    return rc;
}

static Py_ssize_t results_size(const Scanner *self) {
    return self->n_counts + self->n_views + self->n_tag_kinds + 1;
}

/* The capsule's functions (see _bytescan_api.h). */
static int api_sizes(PyObject *scanner, Py_ssize_t *n_counts, Py_ssize_t *n_views, Py_ssize_t *n_tags,
                     Py_ssize_t *n_out) {
    const Scanner *self = (const Scanner *)scanner;
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is not initialised");
        return -1;
    }
    *n_counts = self->n_counts, *n_views = self->n_views, *n_tags = self->n_tag_kinds;
    *n_out = results_size(self);
    return 0;
}

static int api_scan_into(PyObject *scanner, const unsigned char *data, Py_ssize_t size, Py_ssize_t *out,
                         Py_ssize_t *distinct) {
    return scan_into((Scanner *)scanner, data, size, out, distinct);
}

static PyObject *Scanner_scan(Scanner *self, PyObject *arg) {
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner is not initialised");
        return NULL;
    }
    if (!PyBytes_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "scan() takes bytes, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    Py_ssize_t *out = PyMem_Calloc(results_size(self), sizeof(Py_ssize_t)), distinct;
    if (!out) return PyErr_NoMemory();
    PyObject *result = NULL;
    if (scan_into(self, (const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), out, &distinct) == 0) {
        PyObject *count_list = list_of(out, self->n_counts);
        PyObject *length_list = count_list ? list_of(out + self->n_counts, self->n_views) : NULL;
        PyObject *tag_list = length_list ? list_of(out + self->n_counts + self->n_views, self->n_tag_kinds) : NULL;
        if (tag_list)
            result = Py_BuildValue("(NNNn)", count_list, length_list, tag_list, distinct);
        else {
            Py_XDECREF(count_list);
            Py_XDECREF(length_list);
        }
    }
    PyMem_Free(out);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_O,
     "scan(data: bytes) -> (counts, view lengths, tag counts, distinct words)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "stratum_litellm.scoring._bytescan.Scanner",
    .tp_doc = PyDoc_STR("Scanner(views, vocabulary, tags=0, words_view=-1, distinct_view=-1): "
                        "see stratum_litellm.scoring.scan"),
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_bytescan", .m_doc = "C engine of stratum_litellm.scoring.scan.", .m_size = -1,
};

PyMODINIT_FUNC PyInit__bytescan(void) {
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    static BytescanAPI api = {BYTESCAN_API_VERSION, &ScannerType, api_sizes, api_scan_into};
    PyObject *capsule = PyCapsule_New(&api, BYTESCAN_API_CAPSULE, NULL);
    Py_INCREF(&ScannerType);
    if (!capsule || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
