#ifndef MARQUEE_CTLS_SHIM_H
#define MARQUEE_CTLS_SHIM_H

// OpenSSL 3's TLS for the gateway. Most of its settings are macros over SSL_CTX_ctrl, which Swift
// cannot call: they are re-exported here as inline functions and constants.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <string.h>

static const uint64_t MQ_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const uint64_t MQ_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const uint64_t MQ_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;

static inline int mq_ssl_ctx_set_protocols(SSL_CTX *ctx, int min, int max) {
    return SSL_CTX_set_min_proto_version(ctx, min) == 1 && SSL_CTX_set_max_proto_version(ctx, max) == 1;
}

static inline long mq_ssl_ctx_set_partial_writes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static inline size_t mq_bio_pending(BIO *bio) { return BIO_ctrl_pending(bio); }

// An empty memory BIO reads as "retry", not as the end of the stream.
static inline void mq_bio_mem_retry_when_empty(BIO *bio) { BIO_set_mem_eof_return(bio, -1); }

static inline int mq_ssl_set_server_name(SSL *ssl, const char *name) { return (int)SSL_set_tlsext_host_name(ssl, name); }

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

#endif
