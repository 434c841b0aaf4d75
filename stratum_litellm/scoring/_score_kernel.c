/*
 * The C version of the scorer's last step (stratum_litellm.scoring.scorer._python_kernel): from a
 * request's raw counts to its signals, their weighted parts and the score. The Python
 * function is the reference; this one performs the same floating-point operations in the
 * same order, so the results are identical (tests compare them on arbitrary inputs).
 * What it saves is the interpreter's overhead on ~200 arithmetic operations per request.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* The counts, in stratum_litellm.scoring.measure.FIELDS order. */
enum {
    TOKENS, SENTENCES, QUESTIONS, MATH_NOTATION, MATH_WORDS, NUMBERS, NUMBER_WORDS, COMPUTE_ASKS, RELATIONS,
    CODE_SYNTAX, CODE_WORDS, REASONING, ENUMERATIONS, SEQUENCE, ENTITIES, NEGATION, CONSTRAINTS,
    FIRST_DOMAIN, N_DOMAINS = 6, N_FIELDS = FIRST_DOMAIN + N_DOMAINS
};
/* The signals, in stratum_litellm.scoring.scorer.DIMENSIONS order: 9, the domains, then context. */
enum { N_SIGNALS = 9 + N_DOMAINS + 1 };

/* Python's min(a, b) and max(a, b) for floats: the first argument unless the second is
   strictly smaller (larger). */
static inline double py_min(double a, double b) { return b < a ? b : a; }
static inline double py_max(double a, double b) { return b > a ? b : a; }
/* x / (x + half), 0 for x <= 0: the saturating map of most signals. */
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
    double c[N_FIELDS], w[N_SIGNALS], s[N_SIGNALS], parts[N_SIGNALS];
    if (read_doubles(args[0], c, N_FIELDS, "counts") < 0 || read_doubles(args[2], w, N_SIGNALS, "weights") < 0)
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
    s[N_SIGNALS - 1] = context;

    double total = 0.0;
    for (int i = 0; i < N_SIGNALS; i++) {
        parts[i] = w[i] * s[i];
        total += parts[i];
    }
    double z = bias + total;
    if (!isfinite(z)) z = bias;
    double value = 1.0 / (1.0 + exp(-py_max(-60.0, py_min(60.0, z))));

    PyObject *part_tuple = tuple_of(parts, N_SIGNALS);
    PyObject *signal_tuple = part_tuple ? tuple_of(s, N_SIGNALS) : NULL;
    if (!signal_tuple) {
        Py_XDECREF(part_tuple);
        return NULL;
    }
    return Py_BuildValue("(dNN)", value, part_tuple, signal_tuple);
}

static PyMethodDef methods[] = {
    {"score", (PyCFunction)(void (*)(void))score, METH_FASTCALL,
     "score(counts, context, weights, bias) -> (value, parts, signals): see stratum_litellm.scoring.scorer"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_score_kernel", .m_doc = "C version of the scorer's last step.", .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__score_kernel(void) { return PyModule_Create(&module); }
