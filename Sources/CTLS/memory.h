#ifndef MARQUEE_CTLS_MEMORY_H
#define MARQUEE_CTLS_MEMORY_H

// OpenSSL's heap, given a cache per thread. OpenSSL 3.0 allocates small blocks for every record it
// writes (a WPACKET's sub-packets, two or three per record), so a connection that is already
// encrypted would still call malloc a few hundred times per 2 MB segment. Blocks up to 4 KB are
// kept on free lists of the thread that frees them and handed back to the next allocation of
// their size class: the loops' steady state calls no allocator at all, and takes no allocator lock.
//
// Every block carries a 16-byte header (its class, or its size above the classes), so the user
// pointer keeps malloc's 16-byte alignment. The lists are bounded; a thread that ends returns its
// list to malloc.
//
// Installed once by the executable before anything touches OpenSSL (`mq_openssl_use_thread_caches`):
// OpenSSL refuses new functions once it has allocated, because it would free its own blocks with
// ours. This lives in a header like the rest of the shim; only the module that installs it uses its
// functions, so their thread-local state exists once.
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define MQ_MEM_CLASSES 8               // 32, 64, ..., 4096 bytes
#define MQ_MEM_LARGE 0xFF
#define MQ_MEM_KEPT_PER_CLASS 64

typedef struct { uint32_t size_class; uint32_t padding; size_t size; } mq_mem_header;
_Static_assert(sizeof(mq_mem_header) == 16, "the header keeps 16-byte alignment");

typedef struct mq_mem_free_block { struct mq_mem_free_block *next; } mq_mem_free_block;

typedef struct {
    mq_mem_free_block *lists[MQ_MEM_CLASSES];
    uint32_t counts[MQ_MEM_CLASSES];
    int registered;
} mq_mem_thread_cache;

// State lives in function-local statics: Swift's importer emits a header's inline functions, but
// not its file-scope variables.
static inline mq_mem_thread_cache *mq_mem_thread(void) {
    static __thread mq_mem_thread_cache cache;
    return &cache;
}

static inline pthread_key_t *mq_mem_exit_key(void) {
    static pthread_key_t key;
    return &key;
}

static inline size_t mq_mem_class_size(uint32_t size_class) { return (size_t)32 << size_class; }

static inline uint32_t mq_mem_class_for(size_t size) {
    if (size <= 32) return 0;
    uint32_t size_class = (uint32_t)(64 - __builtin_clzll((unsigned long long)(size - 1))) - 5;
    return size_class < MQ_MEM_CLASSES ? size_class : MQ_MEM_LARGE;
}

static inline void mq_mem_thread_exit(void *cache_pointer) {
    mq_mem_thread_cache *cache = cache_pointer;
    for (int size_class = 0; size_class < MQ_MEM_CLASSES; size_class++) {
        mq_mem_free_block *block = cache->lists[size_class];
        while (block != NULL) {
            mq_mem_free_block *next = block->next;
            free((mq_mem_header *)block - 1);
            block = next;
        }
        cache->lists[size_class] = NULL;
        cache->counts[size_class] = 0;
    }
}

static inline void mq_mem_make_exit_key(void) { pthread_key_create(mq_mem_exit_key(), mq_mem_thread_exit); }

static inline void *mq_mem_malloc(size_t size, const char *file, int line) {
    (void)file; (void)line;
    uint32_t size_class = mq_mem_class_for(size);
    if (size_class != MQ_MEM_LARGE) {
        mq_mem_thread_cache *cache = mq_mem_thread();
        mq_mem_free_block *block = cache->lists[size_class];
        if (block != NULL) {
            cache->lists[size_class] = block->next;
            cache->counts[size_class]--;
            return block;
        }
    }
    size_t payload = size_class == MQ_MEM_LARGE ? size : mq_mem_class_size(size_class);
    if (payload > SIZE_MAX - sizeof(mq_mem_header)) return NULL;
    mq_mem_header *header = malloc(sizeof(mq_mem_header) + payload);
    if (header == NULL) return NULL;
    header->size_class = size_class;
    header->size = payload;
    return header + 1;
}

static inline void mq_mem_free(void *pointer, const char *file, int line) {
    (void)file; (void)line;
    if (pointer == NULL) return;
    mq_mem_header *header = (mq_mem_header *)pointer - 1;
    uint32_t size_class = header->size_class;
    if (size_class == MQ_MEM_LARGE) { free(header); return; }
    mq_mem_thread_cache *cache = mq_mem_thread();
    if (cache->counts[size_class] >= MQ_MEM_KEPT_PER_CLASS) { free(header); return; }
    if (!cache->registered) {
        // The first block this thread keeps: have its lists returned when the thread ends.
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, mq_mem_make_exit_key);
        pthread_setspecific(*mq_mem_exit_key(), cache);
        cache->registered = 1;
    }
    mq_mem_free_block *block = pointer;
    block->next = cache->lists[size_class];
    cache->lists[size_class] = block;
    cache->counts[size_class]++;
}

static inline void *mq_mem_realloc(void *pointer, size_t size, const char *file, int line) {
    if (pointer == NULL) return mq_mem_malloc(size, file, line);
    if (size == 0) { mq_mem_free(pointer, file, line); return NULL; }
    mq_mem_header *header = (mq_mem_header *)pointer - 1;
    if (size <= header->size) return pointer;
    if (header->size_class == MQ_MEM_LARGE && mq_mem_class_for(size) == MQ_MEM_LARGE) {
        if (size > SIZE_MAX - sizeof(mq_mem_header)) return NULL;
        mq_mem_header *grown = realloc(header, sizeof(mq_mem_header) + size);
        if (grown == NULL) return NULL;
        grown->size = size;
        return grown + 1;
    }
    void *moved = mq_mem_malloc(size, file, line);
    if (moved == NULL) return NULL;
    memcpy(moved, pointer, header->size);
    mq_mem_free(pointer, file, line);
    return moved;
}

/// 1 when OpenSSL now allocates through the thread caches; 0 when it had already allocated.
static inline int mq_openssl_use_thread_caches(void) {
    return CRYPTO_set_mem_functions(mq_mem_malloc, mq_mem_realloc, mq_mem_free);
}

#endif
