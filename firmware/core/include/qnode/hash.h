/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), streaming, no malloc. */
#ifndef QNODE_HASH_H
#define QNODE_HASH_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;      /* total length so far */
    uint8_t buf[64];
    uint32_t used;       /* bytes in buf */
} qn_sha256_ctx;

void qn_sha256_init(qn_sha256_ctx *c);
void qn_sha256_update(qn_sha256_ctx *c, const void *data, size_t n);
void qn_sha256_final(qn_sha256_ctx *c, uint8_t out[32]);
void qn_sha256(const void *data, size_t n, uint8_t out[32]);

typedef struct {
    qn_sha256_ctx inner;
    uint8_t okey[64];    /* key ^ opad */
} qn_hmac_ctx;

void qn_hmac_init(qn_hmac_ctx *c, const uint8_t *key, size_t key_len);
void qn_hmac_update(qn_hmac_ctx *c, const void *data, size_t n);
void qn_hmac_final(qn_hmac_ctx *c, uint8_t out[32]);
void qn_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t n, uint8_t out[32]);
/* constant-time comparison: 1 if equal */
int qn_equal32(const uint8_t a[32], const uint8_t b[32]);

#endif
