/* The CBOR subset of the wire protocol (docs/protocol.md section 3): a writer that only ever
 * produces the deterministic form, and a reader that rejects every other form.
 *
 * Multi-byte arguments are big-endian on the wire and are built and parsed with shifts, so
 * nothing here depends on the host's byte order or alignment. */
#include "qnode/cbor.h"

#include <string.h>

/* float32 travels as its IEEE 754 bits; the build refuses a target whose float is not 4 bytes. */
typedef char qn_float_is_32_bits[sizeof(float) == 4 ? 1 : -1];

/* ---- writer ---------------------------------------------------------------------------- */

void qn_cbor_w_init(qn_cbor_w *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->err = 0;
}

static void put(qn_cbor_w *w, const void *src, size_t n)
{
    if (w->err)
        return;
    if (!w->p) {                 /* counting writer */
        w->len += n;
        return;
    }
    if (n > w->cap - w->len) {   /* len <= cap always holds, so this cannot wrap */
        w->err = 1;
        return;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

void qn_cbor_head(qn_cbor_w *w, uint8_t major, uint64_t value)
{
    uint8_t b[9];
    size_t n, i;
    uint8_t ib = (uint8_t)((major & 7u) << 5);

    /* Shortest form (RFC 8949 section 4.2.1): the argument sits in the initial byte below 24,
     * else in the fewest of 1, 2, 4 or 8 following bytes. */
    if (value < 24u) {
        b[0] = (uint8_t)(ib | value);
        put(w, b, 1);
        return;
    }
    if (value <= 0xFFu) {
        b[0] = (uint8_t)(ib | 24u);
        n = 1;
    } else if (value <= 0xFFFFu) {
        b[0] = (uint8_t)(ib | 25u);
        n = 2;
    } else if (value <= 0xFFFFFFFFu) {
        b[0] = (uint8_t)(ib | 26u);
        n = 4;
    } else {
        b[0] = (uint8_t)(ib | 27u);
        n = 8;
    }
    for (i = 0; i < n; i++)
        b[1 + i] = (uint8_t)(value >> (8u * (n - 1u - i)));
    put(w, b, 1 + n);
}

void qn_cbor_uint(qn_cbor_w *w, uint64_t v) { qn_cbor_head(w, 0, v); }

void qn_cbor_int(qn_cbor_w *w, int64_t v)
{
    /* A negative n travels as -1 - n; computed as -(n + 1) it cannot overflow at INT64_MIN. */
    if (v >= 0)
        qn_cbor_head(w, 0, (uint64_t)v);
    else
        qn_cbor_head(w, 1, (uint64_t)(-(v + 1)));
}

void qn_cbor_bstr(qn_cbor_w *w, const void *p, size_t n)
{
    qn_cbor_head(w, 2, (uint64_t)n);
    put(w, p, n);
}

void qn_cbor_tstr(qn_cbor_w *w, const char *s, size_t n)
{
    qn_cbor_head(w, 3, (uint64_t)n);
    put(w, s, n);
}

void qn_cbor_f32(qn_cbor_w *w, float v)
{
    /* Always single precision, even where a half float would be shorter: the protocol's one
     * exception to RFC 8949's preferred serialization. memcpy reads the bits without type
     * punning; float and uint32_t share their byte order on every supported target. */
    uint32_t bits;
    uint8_t b[5];
    memcpy(&bits, &v, sizeof bits);
    b[0] = 0xFA;
    b[1] = (uint8_t)(bits >> 24);
    b[2] = (uint8_t)(bits >> 16);
    b[3] = (uint8_t)(bits >> 8);
    b[4] = (uint8_t)bits;
    put(w, b, sizeof b);
}

void qn_cbor_bool(qn_cbor_w *w, int v)
{
    uint8_t b = v ? 0xF5 : 0xF4;
    put(w, &b, 1);
}

void qn_cbor_raw(qn_cbor_w *w, const void *p, size_t n) { put(w, p, n); }

/* ---- reader ---------------------------------------------------------------------------- */

void qn_cbor_r_init(qn_cbor_r *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->len = p ? n : 0;
    r->pos = 0;
    r->err = 0;
}

static int fail(qn_cbor_r *r)
{
    r->err = 1;
    return -1;
}

int qn_cbor_next(qn_cbor_r *r, qn_cbor_item *it)
{
    /* The smallest argument each width may carry: anything less had a shorter form. */
    static const uint64_t min_for[4] = {24u, 0x100u, 0x10000u, 0x100000000u};
    uint8_t ib, major, ai;
    uint64_t v = 0;
    size_t left;

    if (r->err || r->pos >= r->len)
        return fail(r);
    ib = r->p[r->pos++];
    major = (uint8_t)(ib >> 5);
    ai = (uint8_t)(ib & 31u);
    if (ai < 24u) {
        v = ai;
    } else if (ai <= 27u) {
        size_t width = (size_t)1 << (ai - 24u), i;
        if (width > r->len - r->pos)
            return fail(r);
        for (i = 0; i < width; i++)
            v = (v << 8) | r->p[r->pos++];
        if (major != 7u && v < min_for[ai - 24u])
            return fail(r);
    } else {
        return fail(r);              /* 28..30 reserved; 31 indefinite length or break */
    }
    if (major == 7u) {
        /* false, true and float32 only: no null, undefined, simple values, half or double */
        if (ai == 20u || ai == 21u)
            v = (uint64_t)(ai - 20u);
        else if (ai != 26u)
            return fail(r);
    }

    it->major = major;
    it->ai = ai;
    it->value = v;
    it->data = 0;
    left = r->len - r->pos;
    if (major == 2u || major == 3u) {
        if (v > left)
            return fail(r);
        it->data = r->p + r->pos;
        r->pos += (size_t)v;
    } else if ((major == 4u && v > left) || (major == 5u && v > left / 2u)) {
        /* Every item takes at least one byte: a count beyond that is a lie, refused before
         * anyone loops over it. */
        return fail(r);
    }
    return 0;
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k, j;
        uint32_t cp, min;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c >= 0xC2u && c <= 0xDFu) {
            k = 1;
            cp = c & 0x1Fu;
            min = 0x80u;
        } else if (c >= 0xE0u && c <= 0xEFu) {
            k = 2;
            cp = c & 0x0Fu;
            min = 0x800u;
        } else if (c >= 0xF0u && c <= 0xF4u) {
            k = 3;
            cp = c & 0x07u;
            min = 0x10000u;
        } else {
            return 0;
        }
        if (k > n - i - 1u)
            return 0;
        for (j = 1; j <= k; j++) {
            uint8_t b = s[i + j];
            if ((b & 0xC0u) != 0x80u)
                return 0;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu))
            return 0;
        i += k + 1u;
    }
    return 1;
}

/* One item and everything inside it. depth counts the containers (and tags) around it; the
 * check before each level keeps the recursion at most QN_CBOR_MAX_DEPTH + 1 calls deep. */
static int walk(qn_cbor_r *r, unsigned depth, int tags_ok)
{
    qn_cbor_item it;
    uint64_t i, last = 0;

    if (qn_cbor_next(r, &it))
        return -1;
    switch (it.major) {
    case 3:
        return utf8_ok(it.data, (size_t)it.value) ? 0 : fail(r);
    case 4:
    case 5:
        if (depth + 1u > QN_CBOR_MAX_DEPTH)
            return fail(r);
        for (i = 0; i < it.value; i++) {
            if (it.major == 5u) {
                qn_cbor_item key;
                if (qn_cbor_next(r, &key))
                    return -1;
                if (key.major != 0u || (i > 0 && key.value <= last))
                    return fail(r);      /* keys: unsigned, strictly ascending, so no repeats */
                last = key.value;
            }
            if (walk(r, depth + 1u, tags_ok))
                return -1;
        }
        return 0;
    case 6:
        if (!tags_ok || depth + 1u > QN_CBOR_MAX_DEPTH)
            return fail(r);
        return walk(r, depth + 1u, tags_ok);
    default:
        return 0;
    }
}

int qn_cbor_skip(qn_cbor_r *r) { return walk(r, 0, 1); }

int qn_cbor_check(const uint8_t *p, size_t n, int32_t top_tag)
{
    qn_cbor_r r;
    unsigned depth = 0;

    qn_cbor_r_init(&r, p, n);
    if (top_tag >= 0 && n > 0 && (p[0] >> 5) == 6u) {
        qn_cbor_item tag;
        if (qn_cbor_next(&r, &tag) || tag.value != (uint64_t)top_tag)
            return -1;
        depth = 1;
    }
    if (walk(&r, depth, 0))
        return -1;
    return r.pos == r.len ? 0 : -1;      /* nothing may follow the item */
}
