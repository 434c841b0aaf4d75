/*
 * Test double for libnvidia-ml.so.1 so the REAL pynvml code path runs on machines
 * without a GPU or NVIDIA driver.
 *
 * The state is re-read from the file named by $FAKE_NVML_STATE on EVERY call, so a
 * test changes what "the driver" reports by rewriting that file (atomically, see
 * tests/support/nvml_fake.py). Line format (one directive per line, '#' starts a comment):
 *
 *   count N                                   device count (default: highest gpu index + 1)
 *   gpu IDX TOTAL FREE USED UTIL MEMUTIL NAME  one device; NAME is the rest of the line
 *   fail FUNCTION CODE [DEVICE]               FUNCTION returns NVML error CODE
 *                                             (for every call, or only for device DEVICE)
 *   hang FUNCTION                             FUNCTION blocks until the line is removed
 *
 * An unreadable state file makes every call return NVML_ERROR_UNKNOWN. With
 * $FAKE_NVML_STATE unset every call returns NVML_ERROR_LIBRARY_NOT_FOUND: once loaded,
 * the fake cannot be unloaded from the test process, so outside a scenario it must look
 * like this GPU-less machine really does (pynvml then raises NVMLError_LibraryNotFound).
 *
 * Besides the NVML symbols pynvml resolves, the library exports fakenvml_* helpers
 * (call counters, init refcount, reset) that tests read through ctypes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_LIBRARY_NOT_FOUND 12
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_UNKNOWN 999

#define MAX_GPUS 16
#define MAX_FAILS 32
#define MAX_HANGS 8
#define FN_LEN 64
#define NAME_LEN 96
/* A hung call gives up after this long so a broken test cannot wedge the session. */
#define HANG_LIMIT_MS 30000

typedef struct {
    int present;
    unsigned long long total, free, used;
    unsigned int util, memutil;
    char name[NAME_LEN];
} fake_gpu;

typedef struct {
    char fn[FN_LEN];
    int code;
    int device; /* -1: every call */
} fake_fail;

typedef struct {
    int count;
    fake_gpu gpus[MAX_GPUS];
    int nfail;
    fake_fail fails[MAX_FAILS];
    int nhang;
    char hangs[MAX_HANGS][FN_LEN];
} fake_state;

typedef struct {
    unsigned long long total, free, used;
} nvml_memory_v1;

typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvml_memory_v2;

typedef struct {
    unsigned int gpu, memory;
} nvml_utilization;

/* Names of the counted entry points; the index is the counter slot. */
static const char *const counted[] = {
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetName",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetUtilizationRates",
};
#define N_COUNTED (sizeof(counted) / sizeof(counted[0]))

static unsigned long calls[N_COUNTED];
/* NVML is refcounted: device calls fail with UNINITIALIZED while this is 0. */
static int init_count;
/* Handles are addresses inside this array, so a handle maps back to its index. */
static char handle_slots[MAX_GPUS];

static void count_call(const char *fn) {
    for (size_t i = 0; i < N_COUNTED; i++) {
        if (strcmp(counted[i], fn) == 0) {
            __atomic_fetch_add(&calls[i], 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
}

static void strip_newline(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static int load_state(fake_state *st) {
    memset(st, 0, sizeof(*st));
    const char *path = getenv("FAKE_NVML_STATE");
    if (path == NULL || *path == '\0') return -1;
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;

    char line[512];
    int explicit_count = -1, highest = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        strip_newline(line);
        char word[16];
        if (sscanf(line, "%15s", word) != 1 || word[0] == '#') continue;

        if (strcmp(word, "count") == 0) {
            sscanf(line, "%*s %d", &explicit_count);
        } else if (strcmp(word, "gpu") == 0) {
            int idx, consumed = 0;
            fake_gpu g;
            memset(&g, 0, sizeof g);
            if (sscanf(line, "%*s %d %llu %llu %llu %u %u %n", &idx, &g.total, &g.free,
                       &g.used, &g.util, &g.memutil, &consumed) < 6)
                continue;
            if (idx < 0 || idx >= MAX_GPUS) continue;
            if (consumed > 0) strncpy(g.name, line + consumed, NAME_LEN - 1);
            g.present = 1;
            st->gpus[idx] = g;
            if (idx > highest) highest = idx;
        } else if (strcmp(word, "fail") == 0 && st->nfail < MAX_FAILS) {
            fake_fail *fl = &st->fails[st->nfail];
            fl->device = -1;
            if (sscanf(line, "%*s %63s %d %d", fl->fn, &fl->code, &fl->device) >= 2) st->nfail++;
        } else if (strcmp(word, "hang") == 0 && st->nhang < MAX_HANGS) {
            if (sscanf(line, "%*s %63s", st->hangs[st->nhang]) == 1) st->nhang++;
        }
    }
    fclose(f);
    st->count = explicit_count >= 0 ? explicit_count : highest + 1;
    if (st->count > MAX_GPUS) st->count = MAX_GPUS;
    return 0;
}

static int is_hung(const fake_state *st, const char *fn) {
    for (int i = 0; i < st->nhang; i++)
        if (strcmp(st->hangs[i], fn) == 0) return 1;
    return 0;
}

/*
 * Common prologue of every entry point: count the call, load the current state
 * (blocking while the call is marked as hung) and apply injected failures.
 * Returns NVML_SUCCESS or the error code the caller must return.
 */
static int enter(const char *fn, int device, fake_state *st) {
    count_call(fn);
    const char *path = getenv("FAKE_NVML_STATE");
    if (path == NULL || *path == '\0') return NVML_ERROR_LIBRARY_NOT_FOUND;
    for (int waited_ms = 0;; waited_ms += 2) {
        if (load_state(st) != 0) return NVML_ERROR_UNKNOWN;
        if (!is_hung(st, fn) || waited_ms >= HANG_LIMIT_MS) break;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < st->nfail; i++) {
        const fake_fail *fl = &st->fails[i];
        if (strcmp(fl->fn, fn) == 0 && (fl->device < 0 || fl->device == device)) return fl->code;
    }
    return NVML_SUCCESS;
}

/* Maps a handle back to a device that still exists in the current state. */
static int device_of(void *handle, const fake_state *st, fake_gpu **out) {
    char *p = (char *)handle;
    if (p < handle_slots || p >= handle_slots + MAX_GPUS) return NVML_ERROR_INVALID_ARGUMENT;
    int idx = (int)(p - handle_slots);
    /* A device that vanished from the state file behaves like a GPU that fell off the bus. */
    if (idx >= st->count || !st->gpus[idx].present) return NVML_ERROR_GPU_IS_LOST;
    *out = (fake_gpu *)&st->gpus[idx];
    return NVML_SUCCESS;
}

static int handle_index(void *handle) {
    char *p = (char *)handle;
    if (p < handle_slots || p >= handle_slots + MAX_GPUS) return -2;
    return (int)(p - handle_slots);
}

/* ---- NVML entry points used by pynvml ---------------------------------- */

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    fake_state st;
    int rc = enter("nvmlInitWithFlags", -1, &st);
    if (rc != NVML_SUCCESS) return rc;
    __atomic_fetch_add(&init_count, 1, __ATOMIC_SEQ_CST);
    return NVML_SUCCESS;
}

int nvmlInit_v2(void) {
    fake_state st;
    int rc = enter("nvmlInit_v2", -1, &st);
    if (rc != NVML_SUCCESS) return rc;
    __atomic_fetch_add(&init_count, 1, __ATOMIC_SEQ_CST);
    return NVML_SUCCESS;
}

int nvmlShutdown(void) {
    fake_state st;
    int rc = enter("nvmlShutdown", -1, &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    __atomic_fetch_sub(&init_count, 1, __ATOMIC_SEQ_CST);
    return NVML_SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int *count) {
    fake_state st;
    int rc = enter("nvmlDeviceGetCount_v2", -1, &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    *count = (unsigned int)st.count;
    return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    fake_state st;
    int rc = enter("nvmlDeviceGetHandleByIndex_v2", (int)index, &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if (device == NULL || index >= (unsigned int)st.count || index >= MAX_GPUS)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!st.gpus[index].present) return NVML_ERROR_GPU_IS_LOST;
    *device = &handle_slots[index];
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(void *handle, char *name, unsigned int length) {
    fake_state st;
    fake_gpu *g;
    int rc = enter("nvmlDeviceGetName", handle_index(handle), &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if ((rc = device_of(handle, &st, &g)) != NVML_SUCCESS) return rc;
    if (name == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(g->name) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(name, g->name);
    return NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo(void *handle, nvml_memory_v1 *memory) {
    fake_state st;
    fake_gpu *g;
    int rc = enter("nvmlDeviceGetMemoryInfo", handle_index(handle), &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if ((rc = device_of(handle, &st, &g)) != NVML_SUCCESS) return rc;
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = g->total;
    memory->free = g->free;
    memory->used = g->used;
    return NVML_SUCCESS;
}

int nvmlDeviceGetMemoryInfo_v2(void *handle, nvml_memory_v2 *memory) {
    fake_state st;
    fake_gpu *g;
    int rc = enter("nvmlDeviceGetMemoryInfo_v2", handle_index(handle), &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if ((rc = device_of(handle, &st, &g)) != NVML_SUCCESS) return rc;
    if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    memory->total = g->total;
    memory->reserved = 0;
    memory->free = g->free;
    memory->used = g->used;
    return NVML_SUCCESS;
}

int nvmlDeviceGetUtilizationRates(void *handle, nvml_utilization *util) {
    fake_state st;
    fake_gpu *g;
    int rc = enter("nvmlDeviceGetUtilizationRates", handle_index(handle), &st);
    if (rc != NVML_SUCCESS) return rc;
    if (__atomic_load_n(&init_count, __ATOMIC_SEQ_CST) <= 0) return NVML_ERROR_UNINITIALIZED;
    if ((rc = device_of(handle, &st, &g)) != NVML_SUCCESS) return rc;
    if (util == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    util->gpu = g->util;
    util->memory = g->memutil;
    return NVML_SUCCESS;
}

/* pynvml calls this to describe codes it has no text for. */
const char *nvmlErrorString(int result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Fake NVML error";
    }
}

/* ---- helpers for the tests (not part of NVML) ------------------------- */

unsigned long fakenvml_calls(const char *fn) {
    for (size_t i = 0; i < N_COUNTED; i++)
        if (strcmp(counted[i], fn) == 0) return __atomic_load_n(&calls[i], __ATOMIC_SEQ_CST);
    return (unsigned long)-1;
}

int fakenvml_init_count(void) { return __atomic_load_n(&init_count, __ATOMIC_SEQ_CST); }

void fakenvml_reset(void) {
    for (size_t i = 0; i < N_COUNTED; i++) __atomic_store_n(&calls[i], 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&init_count, 0, __ATOMIC_SEQ_CST);
}
