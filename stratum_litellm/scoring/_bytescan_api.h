/*
 * What the scan engine (_bytescan.c) offers other C extensions, through a capsule: the
 * measurements (_measure.c) read a scan's results in place instead of as Python lists.
 */
#ifndef STRATUM_BYTESCAN_API_H
#define STRATUM_BYTESCAN_API_H

#include <Python.h>

#define BYTESCAN_API_CAPSULE "stratum_litellm.scoring._bytescan._C_API"
#define BYTESCAN_API_VERSION 2

typedef struct {
    int version;
    PyTypeObject *scanner_type;
    /* Sizes of a scan's results: n_counts counts, n_views view lengths, n_tags tag counts,
       and how many Py_ssize_t scan_into's `out` must hold. -1 with an exception set when the
       scanner is not initialised. */
    int (*sizes)(PyObject *scanner, Py_ssize_t *n_counts, Py_ssize_t *n_views, Py_ssize_t *n_tags,
                 Py_ssize_t *n_out);
    /* Scans data[0:size] (data[size] must be a NUL byte) into out[] (the counts, view
       lengths and tag counts, one after the other; zeroed by the caller) and *distinct.
       0, or -1 with an exception set. */
    int (*scan_into)(PyObject *scanner, const unsigned char *data, Py_ssize_t size, Py_ssize_t *out,
                     Py_ssize_t *distinct);
} BytescanAPI;

#endif
