/* HMAC-SHA256 (RFC 2104 with SHA-256), streaming, and a constant-time tag comparison. */
#include "qnode/hash.h"

#include <string.h>

void qn_hmac_init(qn_hmac_ctx *c, const uint8_t *key, size_t key_len)
{
    uint8_t k[64];
    unsigned i;

    /* RFC 2104: a key longer than the block is hashed first; a shorter one is zero-padded. */
    memset(k, 0, sizeof k);
    if (key_len > sizeof k)
        qn_sha256(key, key_len, k);
    else if (key_len)
        memcpy(k, key, key_len);

    /* The outer pad is kept (64 bytes) rather than the key, so final() needs no key copy. */
    for (i = 0; i < 64; i++) {
        c->okey[i] = (uint8_t)(k[i] ^ 0x5Cu);
        k[i] = (uint8_t)(k[i] ^ 0x36u);
    }
    qn_sha256_init(&c->inner);
    qn_sha256_update(&c->inner, k, sizeof k);
}

void qn_hmac_update(qn_hmac_ctx *c, const void *data, size_t n)
{
    qn_sha256_update(&c->inner, data, n);
}

void qn_hmac_final(qn_hmac_ctx *c, uint8_t out[32])
{
    uint8_t ih[32];
    qn_sha256_final(&c->inner, ih);
    /* The inner context is finished, so it is reused for the outer hash: no second context
     * on the stack. */
    qn_sha256_init(&c->inner);
    qn_sha256_update(&c->inner, c->okey, sizeof c->okey);
    qn_sha256_update(&c->inner, ih, sizeof ih);
    qn_sha256_final(&c->inner, out);
}

void qn_hmac_sha256(const uint8_t *key, size_t key_len, const void *msg, size_t n, uint8_t out[32])
{
    qn_hmac_ctx c;
    qn_hmac_init(&c, key, key_len);
    qn_hmac_update(&c, msg, n);
    qn_hmac_final(&c, out);
}

int qn_equal32(const uint8_t a[32], const uint8_t b[32])
{
    /* No early exit: the time does not depend on where the tags differ, so a forger cannot
     * learn a valid tag byte by byte from response times. */
    uint32_t diff = 0;
    unsigned i;
    for (i = 0; i < 32; i++)
        diff |= (uint32_t)(a[i] ^ b[i]);
    /* diff is 0..255: diff - 1 wraps to all ones only when diff is 0 */
    return (int)(1u & ((diff - 1u) >> 8));
}
