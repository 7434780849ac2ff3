// LD_PRELOAD library for Benchmarks/alloc-per-request.sh: counts heap allocations of the whole
// process and prints the running total to stderr on SIGUSR2, so the difference between two
// readings around a load run gives allocations per request.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong allocations;
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

// calloc is called by dlsym itself: serve that first call from a static buffer.
static char bootstrap[4096];
static int resolving;

static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    resolving = 0;
}

void *malloc(size_t n) { resolve(); atomic_fetch_add(&allocations, 1); return real_malloc(n); }
void *calloc(size_t a, size_t b) {
    if (!real_calloc) { if (resolving) return bootstrap; resolve(); }
    atomic_fetch_add(&allocations, 1);
    return real_calloc(a, b);
}
void *realloc(void *p, size_t n) { resolve(); atomic_fetch_add(&allocations, 1); return real_realloc(p, n); }
int posix_memalign(void **p, size_t a, size_t n) { resolve(); atomic_fetch_add(&allocations, 1); return real_posix_memalign(p, a, n); }
void *aligned_alloc(size_t a, size_t n) { resolve(); atomic_fetch_add(&allocations, 1); return real_aligned_alloc(a, n); }
void free(void *p) {
    static void (*real_free)(void *);
    if (p == bootstrap) return;
    if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
    real_free(p);
}

static void report(int sig) {
    (void)sig;
    char line[64];
    unsigned long n = atomic_load(&allocations);
    int len = 0;
    char digits[24]; int d = 0;
    do { digits[d++] = '0' + n % 10; n /= 10; } while (n);
    memcpy(line, "allocations ", 12); len = 12;
    while (d) line[len++] = digits[--d];
    line[len++] = '\n';
    write(2, line, len);
}

__attribute__((constructor)) static void install(void) {
    resolve();
    signal(SIGUSR2, report);
}
