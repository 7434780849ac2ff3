#ifndef MARQUEE_CTLS_SHIM_H
#define MARQUEE_CTLS_SHIM_H

// OpenSSL 3's TLS for the gateway. Most of its settings are macros over SSL_CTX_ctrl, which Swift
// cannot call: they are re-exported here as inline functions and constants.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509v3.h>
#include <openssl/rand.h>
#include <openssl/provider.h>
#include <openssl/core_names.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include "memory.h"

static const uint64_t MQ_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t MQ_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const uint64_t MQ_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;

static inline int mq_ssl_ctx_set_protocols(SSL_CTX *ctx, int min, int max) {
    return SSL_CTX_set_min_proto_version(ctx, min) == 1 && SSL_CTX_set_max_proto_version(ctx, max) == 1;
}

static inline long mq_ssl_ctx_set_partial_writes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

// A library context of its own (with the default provider) for one event loop.
static inline OSSL_LIB_CTX *mq_library_new(void) {
    OSSL_LIB_CTX *library = OSSL_LIB_CTX_new();
    if (library == NULL) return NULL;
    if (OSSL_PROVIDER_load(library, "default") == NULL) {
        OSSL_LIB_CTX_free(library);
        return NULL;
    }
    return library;
}

// The policy a server keeps whatever the system's OpenSSL configuration says (a library context
// of its own reads none): security level 2, and for TLS 1.2 only forward-secret AEAD suites.
static inline int mq_ssl_ctx_modern_ciphers(SSL_CTX *ctx) {
    SSL_CTX_set_security_level(ctx, 2);
    return SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL");
}

// Resumption is by tickets only (stateless): no server-side cache, which every thread would
// share under a lock.
static inline long mq_ssl_ctx_no_session_cache(SSL_CTX *ctx) { return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); }

// The loop's BIO hands over everything received at once: OpenSSL may take it in one read
// instead of a header and then a body per record.
static inline void mq_ssl_ctx_read_ahead(SSL_CTX *ctx) { SSL_CTX_set_read_ahead(ctx, 1); }

static inline size_t mq_bio_pending(BIO *bio) { return BIO_ctrl_pending(bio); }

// An empty memory BIO reads as "retry", not as the end of the stream.
static inline void mq_bio_mem_retry_when_empty(BIO *bio) { BIO_set_mem_eof_return(bio, -1); }

static inline int mq_ssl_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

// A client connection to `name`: the certificate must be for it (a DNS name, or an IP address,
// which is checked as one and not sent as SNI, as RFC 6066 wants).
static inline int mq_ssl_client_expect(SSL *ssl, const char *name) {
    SSL_set_connect_state(ssl);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name) == 1) return 1;
    ERR_clear_error();
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

// When the context's certificate (the leaf) stops being valid, in Unix seconds; 0 when unknown.
static inline int64_t mq_ssl_ctx_not_after(SSL_CTX *ctx) {
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    struct tm expiry;
    if (leaf == NULL || ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &expiry) != 1) return 0;
    return (int64_t)timegm(&expiry);
}

// Public-key pins of a client context: SHA-256 digests of a SubjectPublicKeyInfo (curl's
// `--pinnedpubkey sha256//...`, HPKP's pin-sha256). With pins, a chain that verifies must also
// carry one of these keys (the leaf's, an intermediate's or the root's), else the handshake fails
// with X509_V_ERR_APPLICATION_VERIFICATION. The table is the context's ex_data, freed with it.
// Its index lives in a function-local static: call `mq_ssl_ctx_pin_keys` from one Swift file.
typedef struct { size_t count; unsigned char digests[][32]; } mq_key_pins;

static inline int *mq_key_pins_index(void) {
    static int index = -1;
    return &index;
}

static inline void mq_key_pins_free(void *parent, void *pins, CRYPTO_EX_DATA *data, int index, long argl, void *argp) {
    (void)parent; (void)data; (void)index; (void)argl; (void)argp;
    OPENSSL_free(pins);
}

static inline void mq_key_pins_make_index(void) {
    *mq_key_pins_index() = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, mq_key_pins_free);
}

static inline int mq_certificate_key_is_pinned(X509 *certificate, const mq_key_pins *pins) {
    unsigned char *der = NULL;
    int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(certificate), &der);
    if (length <= 0) return 0;
    unsigned char digest[32];
    int pinned = 0;
    if (EVP_Digest(der, (size_t)length, digest, NULL, EVP_sha256(), NULL) == 1) {
        for (size_t i = 0; i < pins->count && !pinned; i++) pinned = CRYPTO_memcmp(digest, pins->digests[i], 32) == 0;
    }
    OPENSSL_free(der);
    return pinned;
}

// Called for each certificate from the root down; at the leaf, with everything else verified,
// the chain is whole and its keys are checked against the pins.
static int mq_verify_pinned_keys(int verified, X509_STORE_CTX *store) {
    if (!verified || X509_STORE_CTX_get_error_depth(store) != 0) return verified;
    SSL *ssl = (SSL *)X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const mq_key_pins *pins = ssl == NULL ? NULL : (const mq_key_pins *)SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), *mq_key_pins_index());
    if (pins == NULL || pins->count == 0) return verified;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(store);
    for (int i = 0; i < sk_X509_num(chain); i++) {
        if (mq_certificate_key_is_pinned(sk_X509_value(chain, i), pins)) return 1;
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

/// Verifies peers with `count` pins (32-byte digests, back to back) on top of the CAs; 1 when set.
static inline int mq_ssl_ctx_pin_keys(SSL_CTX *ctx, const unsigned char *digests, size_t count) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, mq_key_pins_make_index);
    if (*mq_key_pins_index() < 0) return 0;
    mq_key_pins *pins = (mq_key_pins *)OPENSSL_malloc(sizeof(mq_key_pins) + count * 32);
    if (pins == NULL) return 0;
    pins->count = count;
    memcpy(pins->digests, digests, count * 32);
    if (SSL_CTX_set_ex_data(ctx, *mq_key_pins_index(), pins) != 1) {
        OPENSSL_free(pins);
        return 0;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, mq_verify_pinned_keys);
    return 1;
}

static const long MQ_X509_V_ERR_APPLICATION_VERIFICATION = X509_V_ERR_APPLICATION_VERIFICATION;

// ALPN: the gateway speaks HTTP/1.1 only. A client that offers ALPN without it gets no
// protocol (not a failed handshake), as RFC 7301 allows a server that does not pick one.
static int mq_alpn_select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                 const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char offered[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, offered, sizeof offered, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static inline void mq_ssl_ctx_select_http11(SSL_CTX *ctx) { SSL_CTX_set_alpn_select_cb(ctx, mq_alpn_select_http11, NULL); }

/// The client side offers http/1.1 by ALPN.
static inline int mq_ssl_ctx_offer_http11(SSL_CTX *ctx) {
    static const unsigned char offered[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    return SSL_CTX_set_alpn_protos(ctx, offered, sizeof offered) == 0;
}

// A BIO over buffers the caller owns, for an event loop: reads take the ciphertext the loop just
// received (`in`), writes append to the buffer the loop sends next (`out`). Nothing is copied
// into memory of OpenSSL's own, and a BIO never allocates after its creation. An empty `in`
// reads as "retry" and a full `out` writes as "retry", as a non-blocking socket would.
typedef struct mq_tls_io {
    const unsigned char *in;
    size_t in_length;
    unsigned char *out;
    size_t out_capacity;
    size_t out_length;
} mq_tls_io;

static int mq_loop_bio_write(BIO *bio, const char *data, size_t length, size_t *written) {
    mq_tls_io *io = (mq_tls_io *)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    size_t room = io->out == NULL ? 0 : io->out_capacity - io->out_length;
    if (room == 0) {
        BIO_set_retry_write(bio);
        return 0;
    }
    size_t n = length < room ? length : room;
    memcpy(io->out + io->out_length, data, n);
    io->out_length += n;
    *written = n;
    return 1;
}

static int mq_loop_bio_read(BIO *bio, char *data, size_t length, size_t *read) {
    mq_tls_io *io = (mq_tls_io *)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (io->in_length == 0) {
        BIO_set_retry_read(bio);
        return 0;
    }
    size_t n = length < io->in_length ? length : io->in_length;
    memcpy(data, io->in, n);
    io->in += n;
    io->in_length -= n;
    *read = n;
    return 1;
}

static long mq_loop_bio_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number; (void)pointer;
    mq_tls_io *io = (mq_tls_io *)BIO_get_data(bio);
    switch (command) {
    case BIO_CTRL_FLUSH: return 1;  // the loop sends what was written
    case BIO_CTRL_PENDING: return io == NULL ? 0 : (long)io->in_length;
    case BIO_CTRL_WPENDING: return 0;
    default: return 0;
    }
}

static int mq_loop_bio_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

static inline BIO_METHOD *mq_loop_bio_method_new(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "marquee loop buffers");
    if (method == NULL) return NULL;
    BIO_meth_set_write_ex(method, mq_loop_bio_write);
    BIO_meth_set_read_ex(method, mq_loop_bio_read);
    BIO_meth_set_ctrl(method, mq_loop_bio_ctrl);
    BIO_meth_set_create(method, mq_loop_bio_create);
    return method;
}

/// A BIO over `io` (which must outlive it), set as both of `ssl`'s ends. 0 when out of memory.
static inline int mq_ssl_attach_loop_bio(SSL *ssl, BIO_METHOD *method, mq_tls_io *io) {
    BIO *bio = BIO_new(method);
    if (bio == NULL) return 0;
    BIO_set_data(bio, io);
    SSL_set_bio(ssl, bio, bio);  // the same BIO for both ends: the SSL takes its one reference
    return 1;
}

// SNI: the certificate whose names match the name a client asked for. `contexts[0]` is the
// connection's own (the default); a name no certificate covers gets it too, as nginx's default
// server does. Each context's leaf is matched with X509_check_host (wildcards included).
typedef struct mq_sni_table {
    SSL_CTX **contexts;
    int count;
} mq_sni_table;

static int mq_sni_select(SSL *ssl, int *alert, void *arg) {
    (void)alert;
    const mq_sni_table *table = (const mq_sni_table *)arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || table == NULL) return SSL_TLSEXT_ERR_NOACK;
    for (int i = 0; i < table->count; i++) {
        X509 *leaf = SSL_CTX_get0_certificate(table->contexts[i]);
        if (leaf != NULL && X509_check_host(leaf, name, 0, 0, NULL) == 1) {
            if (i > 0 && SSL_set_SSL_CTX(ssl, table->contexts[i]) == NULL) return SSL_TLSEXT_ERR_ALERT_FATAL;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static inline void mq_ssl_ctx_select_by_name(SSL_CTX *ctx, mq_sni_table *table) {
    SSL_CTX_set_tlsext_servername_callback(ctx, mq_sni_select);
    SSL_CTX_set_tlsext_servername_arg(ctx, table);
}

// Session tickets under keys of our own, rotated: new tickets are sealed with the current key,
// tickets of the previous key are still accepted (and replaced), older ones mean a full
// handshake. One ring of keys serves every context (it is the contexts' app data), so a
// certificate reload keeps tickets valid. The loops read it and the reloader rotates it.
typedef struct mq_ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
    int valid;
} mq_ticket_key;

typedef struct mq_ticket_keys {
    pthread_mutex_t lock;
    mq_ticket_key current;
    mq_ticket_key previous;
} mq_ticket_keys;

static inline int mq_ticket_keys_rotate(mq_ticket_keys *keys) {
    mq_ticket_key fresh;
    if (RAND_bytes(fresh.name, sizeof fresh.name) != 1 || RAND_priv_bytes(fresh.aes, sizeof fresh.aes) != 1
        || RAND_priv_bytes(fresh.hmac, sizeof fresh.hmac) != 1) return 0;
    fresh.valid = 1;
    pthread_mutex_lock(&keys->lock);
    keys->previous = keys->current;
    keys->current = fresh;
    pthread_mutex_unlock(&keys->lock);
    OPENSSL_cleanse(&fresh, sizeof fresh);
    return 1;
}

static inline mq_ticket_keys *mq_ticket_keys_new(void) {
    mq_ticket_keys *keys = (mq_ticket_keys *)OPENSSL_zalloc(sizeof *keys);
    if (keys == NULL) return NULL;
    pthread_mutex_init(&keys->lock, NULL);
    if (!mq_ticket_keys_rotate(keys)) { OPENSSL_free(keys); return NULL; }
    return keys;
}

// AES-256-CBC fetched once per thread: `EVP_aes_256_cbc()` would look the cipher up by name in
// the shared default library context at every ticket sealed or opened, under its lock.
static inline const EVP_CIPHER *mq_ticket_cipher(void) {
    static __thread EVP_CIPHER *fetched;
    if (fetched == NULL) fetched = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    return fetched;
}

static int mq_ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                            EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int encrypting) {
    mq_ticket_keys *keys = (mq_ticket_keys *)SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (keys == NULL) return -1;
    mq_ticket_key key;
    int result = 0;
    pthread_mutex_lock(&keys->lock);
    if (encrypting) {
        key = keys->current;
        result = 1;
    } else if (keys->current.valid && memcmp(name, keys->current.name, 16) == 0) {
        key = keys->current;
        // 2, "renew", under the current key too: a resumed TLS 1.3 connection then gets fresh
        // tickets, as with OpenSSL's own keys (with 1 it got none, and clients that use a
        // ticket once fell back to a full handshake every other connection).
        result = 2;
    } else if (keys->previous.valid && memcmp(name, keys->previous.name, 16) == 0) {
        key = keys->previous;
        result = 2;  // valid, and the client gets a ticket under the current key
    }
    pthread_mutex_unlock(&keys->lock);
    if (result == 0) return 0;  // unknown or retired key: a full handshake
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    const EVP_CIPHER *aes = mq_ticket_cipher();
    if (aes == NULL) {
        result = -1;
    } else if (encrypting) {
        memcpy(name, key.name, 16);
        if (RAND_bytes(iv, 16) != 1 || EVP_EncryptInit_ex(cipher, aes, NULL, key.aes, iv) != 1) result = -1;
    } else if (EVP_DecryptInit_ex(cipher, aes, NULL, key.aes, iv) != 1) {
        result = -1;
    }
    if (result > 0 && EVP_MAC_CTX_set_params(mac, params) != 1) result = -1;
    OPENSSL_cleanse(&key, sizeof key);
    return result;
}

static inline void mq_ssl_ctx_use_ticket_keys(SSL_CTX *ctx, mq_ticket_keys *keys, long lifetime_seconds) {
    SSL_CTX_set_app_data(ctx, keys);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, mq_ticket_key_cb);
    SSL_CTX_set_timeout(ctx, lifetime_seconds);
}

#endif
