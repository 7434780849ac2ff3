// Linux calls Swift cannot reach directly: variadic syscall() and fcntl(), and openat2's struct.
#pragma once
#include <sys/resource.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <errno.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/xattr.h>
#include "mapped_reads.h"

/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: the kernel refuses any resolution,
/// symlinks included, that leaves `dirfd`. Returns the fd or -errno.
static inline int mq_open_beneath(int dirfd, const char *path) {
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .mode = 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    return fd < 0 ? -errno : (int)fd;
}

// F_SETPIPE_SZ needs _GNU_SOURCE, which must not be defined here: it changes libc's struct
// definitions against the Glibc module Swift already built (fd_set clash on a clean build).
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
// pipe2 is declared only under _GNU_SOURCE.
extern int pipe2(int pipefd[2], int flags);
static inline int mq_pipe(int fds[2], int flags) { return pipe2(fds, flags); }
// splice too (the edge's fills move a body from the socket to the file through a pipe), and its
// flags, which fcntl.h also hides behind _GNU_SOURCE.
static const unsigned int MQ_SPLICE_F_MOVE = 1;
static const unsigned int MQ_SPLICE_F_NONBLOCK = 2;
static const unsigned int MQ_SPLICE_F_MORE = 4;
extern long splice(int fd_in, long *off_in, int fd_out, long *off_out, unsigned long len, unsigned int flags);
static inline long mq_splice(int fd_in, int fd_out, unsigned long len, unsigned int flags) {
    return splice(fd_in, 0, fd_out, 0, len, flags);
}
static inline int mq_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
static inline int mq_fcntl_getfl(int fd) { return fcntl(fd, F_GETFL); }
static inline int mq_fcntl_setfl(int fd, int flags) { return fcntl(fd, F_SETFL, flags); }

// Counters written by one event-loop thread and read by the admin thread: relaxed atomics
// compile to plain loads and stores on x86-64 and arm64, and keep the reads well-defined.
#include <stdint.h>
static inline uint64_t mq_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void mq_add_relaxed(uint64_t *p, uint64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void mq_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

// Tables shared by every loop (rate limits, connection counts per address, revocations): 64-bit
// words updated with compare-and-swap, so no loop ever waits on a lock.
static inline uint64_t mq_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void mq_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int mq_compare_exchange(uint64_t *p, uint64_t *expected, uint64_t desired) {
    return __atomic_compare_exchange_n(p, expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline uint64_t mq_fetch_add(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
static inline uint64_t mq_fetch_sub(uint64_t *p, uint64_t v) { return __atomic_fetch_sub(p, v, __ATOMIC_ACQ_REL); }

/// Raises RLIMIT_MEMLOCK's soft limit to at least `bytes` where the hard limit allows (the RAM
/// tier locks cached pages); returns the soft limit now in force (ULLONG_MAX: unlimited).
static inline unsigned long long mq_raise_memlock(unsigned long long bytes) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return 0;
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < bytes) {
        struct rlimit raised = limit;
        raised.rlim_cur = (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= bytes) ? bytes : limit.rlim_max;
        if (setrlimit(RLIMIT_MEMLOCK, &raised) == 0) limit = raised;
    }
    return limit.rlim_cur == RLIM_INFINITY ? ~0ULL : (unsigned long long)limit.rlim_cur;
}
