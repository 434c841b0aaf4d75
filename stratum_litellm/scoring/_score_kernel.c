/*
 * The C version of the scorer's last step (stratum_litellm.scoring.scorer._score): from a
 * request's counts to its levels, their weighted parts and the score. The Python function
 * is the spec; this one performs the same floating-point operations in the same order, so
 * the results are identical (tests compare them on arbitrary inputs). It saves the
 * interpreter's overhead on ~100 arithmetic operations per request.
 *
 * The module's FIELDS and DIMENSIONS say which counts it reads and which levels it makes, in
 * its order; the scorer uses it only where they equal its own, so a dimension added in Python
 * cannot be misread here (the Python kernel serves until this file follows).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* The counts, in stratum_litellm.scoring.measure.FIELDS order (see FIELD_NAMES). */
enum {
    TOKENS, SENTENCES, QUESTIONS, MATH_NOTATION, MATH_WORDS, NUMBERS, NUMBER_WORDS, COMPUTE_ASKS, RELATIONS,
    CODE_SYNTAX, CODE_WORDS, REASONING, ENUMERATIONS, SEQUENCE, ENTITIES, NEGATION, CONSTRAINTS,
    FIRST_DOMAIN, N_DOMAINS = 6, N_FIELDS = FIRST_DOMAIN + N_DOMAINS
};
/* The levels, in stratum_litellm.scoring.scorer.DIMENSIONS order: 9, the domains, then context. */
enum { N_LEVELS = 9 + N_DOMAINS + 1 };

static const char *const FIELD_NAMES[N_FIELDS] = {
    "tokens", "sentences", "questions", "math_notation", "math_words", "numbers", "number_words", "compute_asks",
    "relations", "code_syntax", "code_words", "reasoning", "enumerations", "sequence", "entities", "negation",
    "constraints", "law", "medicine", "physics", "logic", "economics", "ethics"};
static const char *const DIMENSION_NAMES[N_LEVELS] = {
    "length", "math", "arithmetic", "code", "reasoning", "steps", "entities", "constraints", "negation", "law",
    "medicine", "physics", "logic", "economics", "ethics", "context"};

/* Python's min(a, b) and max(a, b) for floats: the first argument unless the second is
   strictly smaller (larger). */
static inline double py_min(double a, double b) { return b < a ? b : a; }
static inline double py_max(double a, double b) { return b > a ? b : a; }
/* x / (x + half), 0 for x <= 0: the saturating map of most levels. */
static inline double saturate(double x, double half) { return x > 0 ? x / (x + half) : 0.0; }

static int read_doubles(PyObject *seq, double *out, Py_ssize_t n, const char *what) {
    PyObject *fast = PySequence_Fast(seq, what);
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd numbers, got %zd", what, n, PySequence_Fast_GET_SIZE(fast));
        Py_DECREF(fast);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (out[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

static PyObject *tuple_of(const double *values, Py_ssize_t n) {
    PyObject *tuple = PyTuple_New(n);
    if (!tuple) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyFloat_FromDouble(values[i]);
        if (!value) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, value);
    }
    return tuple;
}

static PyObject *score(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "score(counts, context, weights, bias) takes 4 arguments");
        return NULL;
    }
    double c[N_FIELDS], w[N_LEVELS], s[N_LEVELS], parts[N_LEVELS];
    if (read_doubles(args[0], c, N_FIELDS, "counts") < 0 || read_doubles(args[2], w, N_LEVELS, "weights") < 0)
        return NULL;
    double context = PyFloat_AsDouble(args[1]), bias = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) return NULL;

    static double log_length_cap = 0;
    if (!log_length_cap) log_length_cap = log1p(4000 / 8.0);
    double tokens = c[TOKENS], questions = c[QUESTIONS];
    s[0] = tokens > 0 ? py_min(1.0, log1p(tokens / 8.0) / log_length_cap) : 0.0;
    double quantities = c[NUMBERS] + c[NUMBER_WORDS], asks = c[COMPUTE_ASKS], problem;
    if (asks > 0 && quantities >= 2)
        problem = 1.0;
    else if (asks > 0 || (quantities >= 3 && questions > 0))
        problem = 0.5;
    else
        problem = 0.0;
    double rel = c[RELATIONS];
    double math_n = c[MATH_NOTATION] + c[MATH_WORDS];
    double code = 0.5 * c[CODE_SYNTAX] + c[CODE_WORDS];
    double steps = c[ENUMERATIONS] + c[SEQUENCE] + py_max(0.0, questions - 1.0);
    s[1] = saturate(math_n, 3.0);
    s[2] = rel > 0 ? problem * rel / (rel + 2.0) : 0.0;
    s[3] = saturate(code, 2.0);
    s[4] = saturate(c[REASONING], 3.0);
    s[5] = saturate(steps, 3.0);
    s[6] = saturate(c[ENTITIES], 5.0);
    s[7] = saturate(c[CONSTRAINTS], 3.0);
    s[8] = saturate(c[NEGATION], 2.0);
    double top = c[FIRST_DOMAIN];
    for (int d = 1; d < N_DOMAINS; d++) top = py_max(top, c[FIRST_DOMAIN + d]);
    for (int d = 0; d < N_DOMAINS; d++) {
        double n = c[FIRST_DOMAIN + d];
        s[9 + d] = n > 0 ? n / (n + 2.0) * n / top : 0.0;
    }
    s[N_LEVELS - 1] = context;

    double total = 0.0;
    for (int i = 0; i < N_LEVELS; i++) {
        parts[i] = w[i] * s[i];
        total += parts[i];
    }
    double z = bias + total;
    if (!isfinite(z)) z = bias;
    double value = 1.0 / (1.0 + exp(-py_max(-60.0, py_min(60.0, z))));

    PyObject *part_tuple = tuple_of(parts, N_LEVELS);
    PyObject *level_tuple = part_tuple ? tuple_of(s, N_LEVELS) : NULL;
    if (!level_tuple) {
        Py_XDECREF(part_tuple);
        return NULL;
    }
    return Py_BuildValue("(dNN)", value, part_tuple, level_tuple);
}

static PyMethodDef methods[] = {
    {"score", (PyCFunction)(void (*)(void))score, METH_FASTCALL,
     "score(counts, context, weights, bias) -> (value, parts, levels): see stratum_litellm.scoring.scorer._score"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_score_kernel", .m_doc = "C version of the scorer's last step.", .m_size = -1,
    .m_methods = methods,
};

static PyObject *names(const char *const *items, Py_ssize_t n) {
    PyObject *tuple = PyTuple_New(n);
    for (Py_ssize_t i = 0; tuple && i < n; i++) {
        PyObject *name = PyUnicode_FromString(items[i]);
        if (!name) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, name);
    }
    return tuple;
}

PyMODINIT_FUNC PyInit__score_kernel(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    PyObject *fields = names(FIELD_NAMES, N_FIELDS), *dimensions = names(DIMENSION_NAMES, N_LEVELS);
    if (!fields || PyModule_AddObject(m, "FIELDS", fields) < 0) {
        Py_XDECREF(fields);
        Py_XDECREF(dimensions);
        Py_DECREF(m);
        return NULL;
    }
    if (!dimensions || PyModule_AddObject(m, "DIMENSIONS", dimensions) < 0) {
        Py_XDECREF(dimensions);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
