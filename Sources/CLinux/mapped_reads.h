#ifndef MARQUEE_CLINUX_MAPPED_READS_H
#define MARQUEE_CLINUX_MAPPED_READS_H

// Reading a file through a shared mapping in this process, safe from the file being truncated
// meanwhile. A page past the new end raises SIGBUS on access; while a read is guarded
// (`mq_mapped_read_begin` .. `mq_mapped_read_end`, on the reading thread), the handler maps a page
// of zeros over the faulting one and notes the fault, and the read goes on. The caller then sees
// `mq_mapped_read_end` return 1, discards what it made from the zeros and drops the mapping (its
// pages past the end are now anonymous). A SIGBUS outside a guarded range is not ours: the
// previous handler is put back and the fault repeats under it.
//
// The state lives in function-local statics (Swift's importer emits a header's inline functions,
// not its file-scope variables), and each compiled Swift file gets its own copy of them: call
// these from one Swift file only (`MappedFileReads.swift`).
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    const char *base;
    size_t length;
    volatile sig_atomic_t faulted;
} mq_mapped_read;

static inline mq_mapped_read *mq_mapped_read_state(void) {
    static __thread mq_mapped_read state;
    return &state;
}

static inline struct sigaction *mq_mapped_read_previous_action(void) {
    static struct sigaction previous;
    return &previous;
}

static inline uintptr_t *mq_mapped_read_page_size(void) {
    static uintptr_t size;
    return &size;
}

static inline void mq_mapped_read_on_sigbus(int signal, siginfo_t *info, void *context) {
    (void)signal; (void)context;
    mq_mapped_read *state = mq_mapped_read_state();
    const char *address = (const char *)info->si_addr;
    if (state->base != NULL && address >= state->base && address < state->base + state->length) {
        uintptr_t page_size = *mq_mapped_read_page_size();
        void *page = (void *)((uintptr_t)address & ~(page_size - 1));
        if (mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            state->faulted = 1;
            return;
        }
    }
    sigaction(SIGBUS, mq_mapped_read_previous_action(), NULL);
}

/// 0 once the handler is in place (call once per process).
static inline int mq_mapped_read_install(void) {
    *mq_mapped_read_page_size() = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = mq_mapped_read_on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGBUS, &action, mq_mapped_read_previous_action());
}

static inline void mq_mapped_read_begin(const void *base, size_t length) {
    mq_mapped_read *state = mq_mapped_read_state();
    state->faulted = 0;
    state->length = length;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    state->base = (const char *)base;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/// 1 when a page of the guarded range was past the file's end (and read as zeros).
static inline int mq_mapped_read_end(void) {
    mq_mapped_read *state = mq_mapped_read_state();
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    state->base = NULL;
    return state->faulted;
}

#endif
