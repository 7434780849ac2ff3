#ifndef MARQUEE_COPENSSL_SHIM_H
#define MARQUEE_COPENSSL_SHIM_H

// HMAC-SHA256 with the key's inner and outer pad states computed once per key: a verification
// then costs only the message blocks plus one outer block, with no allocation (OpenSSL's HMAC()
// and EVP_MAC allocate a context per call). The low-level SHA-256 functions are deprecated in
// OpenSSL 3 but remain exported, and use SHA-NI where the CPU has it.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/crypto.h>
#include <string.h>

typedef struct {
    SHA256_CTX inner;
    SHA256_CTX outer;
} mq_hmac_sha256_key;

static inline void mq_hmac_sha256_prepare(mq_hmac_sha256_key *key, const void *secret, size_t length) {
    unsigned char block[64];
    unsigned char pad[64];
    memset(block, 0, sizeof block);
    if (length > 64) {
        SHA256((const unsigned char *)secret, length, block);
    } else {
        memcpy(block, secret, length);
    }
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&key->inner);
    SHA256_Update(&key->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&key->outer);
    SHA256_Update(&key->outer, pad, 64);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
}

/// HMAC of the concatenation of two parts (a prefix and the message), into `mac` (32 bytes).
static inline void mq_hmac_sha256(const mq_hmac_sha256_key *key, const void *part1, size_t length1,
                                  const void *part2, size_t length2, unsigned char *mac) {
    SHA256_CTX ctx = key->inner;
    unsigned char digest[32];
    SHA256_Update(&ctx, part1, length1);
    SHA256_Update(&ctx, part2, length2);
    SHA256_Final(digest, &ctx);
    ctx = key->outer;
    SHA256_Update(&ctx, digest, 32);
    SHA256_Final(mac, &ctx);
}

static inline int mq_constant_time_equal(const void *a, const void *b, size_t length) {
    return CRYPTO_memcmp(a, b, length) == 0;
}

#endif
