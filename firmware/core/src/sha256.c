/* SHA-256 (FIPS 180-4), streaming, no malloc.
 *
 * Words are loaded and stored big-endian with shifts, so the result does not depend on the
 * host's byte order or alignment. The message schedule is a rolling window of 16 words
 * instead of 64: 192 bytes less stack, which matters more on a Cortex-M0+ than the few extra
 * index masks cost. */
#include "qnode/hash.h"

#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428A2F98u, 0x71374491u, 0xB5C0FBCFu, 0xE9B5DBA5u,
    0x3956C25Bu, 0x59F111F1u, 0x923F82A4u, 0xAB1C5ED5u,
    0xD807AA98u, 0x12835B01u, 0x243185BEu, 0x550C7DC3u,
    0x72BE5D74u, 0x80DEB1FEu, 0x9BDC06A7u, 0xC19BF174u,
    0xE49B69C1u, 0xEFBE4786u, 0x0FC19DC6u, 0x240CA1CCu,
    0x2DE92C6Fu, 0x4A7484AAu, 0x5CB0A9DCu, 0x76F988DAu,
    0x983E5152u, 0xA831C66Du, 0xB00327C8u, 0xBF597FC7u,
    0xC6E00BF3u, 0xD5A79147u, 0x06CA6351u, 0x14292967u,
    0x27B70A85u, 0x2E1B2138u, 0x4D2C6DFCu, 0x53380D13u,
    0x650A7354u, 0x766A0ABBu, 0x81C2C92Eu, 0x92722C85u,
    0xA2BFE8A1u, 0xA81A664Bu, 0xC24B8B70u, 0xC76C51A3u,
    0xD192E819u, 0xD6990624u, 0xF40E3585u, 0x106AA070u,
    0x19A4C116u, 0x1E376C08u, 0x2748774Cu, 0x34B0BCB5u,
    0x391C0CB3u, 0x4ED8AA4Au, 0x5B9CCA4Fu, 0x682E6FF3u,
    0x748F82EEu, 0x78A5636Fu, 0x84C87814u, 0x8CC70208u,
    0x90BEFFFAu, 0xA4506CEBu, 0xBEF9A3F7u, 0xC67178F2u,
};

/* n is always a constant in 1..31 here, so neither shift is by 32 (undefined). */
static uint32_t rotr(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void compress(uint32_t h[8], const uint8_t block[64])
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    unsigned i;

    for (i = 0; i < 64; i++) {
        uint32_t t1, t2;
        if (i < 16) {
            w[i] = load_be32(block + 4 * i);
        } else {
            /* w[i] = s1(w[i-2]) + w[i-7] + s0(w[i-15]) + w[i-16], all indices mod 16 */
            uint32_t x = w[(i - 15) & 15], y = w[(i - 2) & 15];
            uint32_t s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3);
            uint32_t s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10);
            w[i & 15] += s0 + w[(i - 7) & 15] + s1;
        }
        t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i & 15];
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void qn_sha256_init(qn_sha256_ctx *c)
{
    /* First 32 bits of the fractional parts of the square roots of the first 8 primes. */
    static const uint32_t iv[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                                   0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->used = 0;
}

void qn_sha256_update(qn_sha256_ctx *c, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;

    if (n == 0)                      /* data may then be NULL, which memcpy must not see */
        return;
    c->bytes += (uint64_t)n;
    /* Top up a partly filled block first; whole blocks then go straight from the caller's
     * buffer, without a copy. */
    if (c->used) {
        size_t take = 64u - c->used;
        if (take > n)
            take = n;
        memcpy(c->buf + c->used, p, take);
        c->used += (uint32_t)take;
        p += take;
        n -= take;
        if (c->used < 64u)
            return;
        compress(c->h, c->buf);
        c->used = 0;
    }
    while (n >= 64u) {
        compress(c->h, p);
        p += 64;
        n -= 64;
    }
    if (n) {
        memcpy(c->buf, p, n);
        c->used = (uint32_t)n;
    }
}

void qn_sha256_final(qn_sha256_ctx *c, uint8_t out[32])
{
    uint64_t bits = c->bytes * 8u;   /* the length field is mod 2^64 bits, as FIPS 180-4 says */
    unsigned i;

    c->buf[c->used++] = 0x80;
    if (c->used > 56u) {             /* no room for the 8 length bytes: one more block */
        memset(c->buf + c->used, 0, 64u - c->used);
        compress(c->h, c->buf);
        c->used = 0;
    }
    memset(c->buf + c->used, 0, 56u - c->used);
    store_be32(c->buf + 56, (uint32_t)(bits >> 32));
    store_be32(c->buf + 60, (uint32_t)bits);
    compress(c->h, c->buf);
    for (i = 0; i < 8; i++)
        store_be32(out + 4 * i, c->h[i]);
}

void qn_sha256(const void *data, size_t n, uint8_t out[32])
{
    qn_sha256_ctx c;
    qn_sha256_init(&c);
    qn_sha256_update(&c, data, n);
    qn_sha256_final(&c, out);
}
