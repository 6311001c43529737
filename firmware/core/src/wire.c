/* Wire protocol v1 on a node (docs/protocol.md): topics, ROUND / MODEL decoding, the sealed
 * UPDATE (COSE_Mac0 with HMAC-SHA256), STATUS, and the serial link's HELLO.
 *
 * Decoders run the receiver's checks in the order of docs/protocol.md section 3, as
 * qora.protocol does: size, the CBOR rules (the whole message, before any field is
 * trusted), version, type, the key set, then each field. So a message gets the same verdict
 * here as on the host, except that a node also refuses (QN_E_RANGE) values beyond what it
 * stores: uint32 fields, QN_LAYOUT_MAX, QN_METHOD_MAX. */
#include "qnode/wire.h"

#include <string.h>

#include "qnode/cbor.h"
#include "qnode/hash.h"

enum {
    K_VERSION = 0, K_TYPE = 1, K_FLEET = 2, K_NODE = 3, K_ROUND = 4, K_INDEX = 5, K_COUNT = 6,
    K_ENCODING = 7, K_ELEMENTS = 8, K_DATA = 9, K_SCALE = 10, K_SAMPLES = 11,
    K_MODEL_VERSION = 12, K_DIGEST = 13, K_DEADLINE = 14, K_METHOD = 15, K_MODE = 16,
    K_CHUNK_ELEMENTS = 17, K_QUORUM = 18, K_ONLINE = 19, K_LAYOUT = 23, K_MODEL_CHUNKS = 24,
    K_FIRMWARE = 25
};
enum { T_ROUND = 1, T_MODEL = 2, T_UPDATE = 3, T_STATUS = 4 };

#define BIT(k) ((uint32_t)1 << (k))
#define MAX_ELEMENTS 0x1000000u      /* 2^24 */
#define MAX_CHUNKS 65535u
#define MAX_SAMPLES 0x7FFFFFFFu
#define PROTO_TEXT_MAX 64u               /* method and firmware: 1..64 characters */
#define LAYOUT_PROTO_MAX 64u

/* COSE_Mac0 pieces (section 7): the envelope up to the payload, and the MAC_structure
 * ["MAC0", h'A10105', h'', payload] up to the payload's bstr head. */
static const uint8_t ENVELOPE_HEAD[7] = {0xD1, 0x84, 0x43, 0xA1, 0x01, 0x05, 0xA0};
static const uint8_t MAC0_HEAD[11] = {0x84, 0x64, 'M', 'A', 'C', '0', 0x43, 0xA1, 0x01, 0x05, 0x40};

/* ---- little-endian int32 ----------------------------------------------------------------- */

int32_t qn_le32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                 ((uint32_t)p[3] << 24);
    /* Converting a uint32 above INT32_MAX to int32 is implementation-defined in C99; this
     * form is exact everywhere, and compilers reduce it to a plain move. */
    if (u <= 0x7FFFFFFFu)
        return (int32_t)u;
    return -(int32_t)(~u) - 1;
}

void qn_put_le32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;            /* modulo 2^32: two's complement bits, by definition */
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

/* ---- ids and topics -------------------------------------------------------------------- */

static int id_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static int valid_id_n(const uint8_t *s, size_t n)
{
    size_t i;
    if (n < 1 || n > QN_ID_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (!id_char(s[i]))
            return 0;
    return 1;
}

/* Length of a NUL-terminated string, but at most max + 1: a string longer than any valid
 * one is refused without being scanned to its end (or past an unterminated buffer). */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n <= max && s[n] != '\0')
        n++;
    return n;
}

/* Length of a NUL-terminated id, or 0 if it is not one. */
static size_t id_len(const char *s)
{
    size_t n;
    if (!s)
        return 0;
    n = bounded_len(s, QN_ID_MAX);
    return valid_id_n((const uint8_t *)s, n) ? n : 0;
}

int qn_valid_id(const char *s) { return id_len(s) != 0; }

/* 1..64 printable ASCII characters without spaces (0x21..0x7E): method and firmware. */
static int printable_n(const uint8_t *s, size_t n)
{
    size_t i;
    if (n < 1 || n > PROTO_TEXT_MAX)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < 0x21u || s[i] > 0x7Eu)
            return 0;
    return 1;
}

/* A chunk index in a topic: 0..65534 in decimal, no sign, no leading zeros. */
static int parse_chunk(const char *s, size_t n, uint32_t *out)
{
    uint32_t v = 0;
    size_t i;
    if (n < 1 || n > 5 || (n > 1 && s[0] == '0'))
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10u + (uint32_t)(s[i] - '0');
    }
    if (v >= MAX_CHUNKS)
        return 0;
    *out = v;
    return 1;
}

/* Kind names in QN_TOPIC_* order, NUL-padded to a fixed width. */
#define KIND_MAX 6
static const char KINDS[5][KIND_MAX + 1] = {"round", "model", "update", "status", "ledger"};

/* QN_TOPIC_* of a kind name of n bytes, or 0. */
static int kind_of(const char *s, size_t n)
{
    int k;
    for (k = 0; k < 5; k++)
        if (n <= KIND_MAX && bounded_len(KINDS[k], KIND_MAX) == n && memcmp(KINDS[k], s, n) == 0)
            return k + 1;
    return 0;
}

static int kind_has_leaf(int kind)
{
    return kind == QN_TOPIC_MODEL || kind == QN_TOPIC_UPDATE || kind == QN_TOPIC_STATUS;
}

size_t qn_topic(char *out, size_t cap, const char *fleet, const char *kind, const char *leaf)
{
    size_t fl = id_len(fleet), kl, ll = 0, len;
    int k;
    uint32_t chunk;

    if (!fl || !kind)
        return 0;
    kl = bounded_len(kind, KIND_MAX);
    k = kind_of(kind, kl);
    if (!k || kind_has_leaf(k) != (leaf != 0))
        return 0;
    if (leaf) {
        ll = bounded_len(leaf, QN_ID_MAX);
        if (k == QN_TOPIC_MODEL ? !parse_chunk(leaf, ll, &chunk) : !id_len(leaf))
            return 0;
    }
    len = 8 + fl + 1 + kl + (leaf ? 1 + ll : 0);
    if (!out || len + 1 > cap)
        return 0;
    memcpy(out, "qora/v1/", 8);
    memcpy(out + 8, fleet, fl);
    out[8 + fl] = '/';
    memcpy(out + 9 + fl, kind, kl);
    if (leaf) {
        out[9 + fl + kl] = '/';
        memcpy(out + 10 + fl + kl, leaf, ll);
    }
    out[len] = '\0';
    return len;
}

int qn_topic_parse(const char *topic, size_t len, const char *fleet, uint32_t *chunk,
                   const char **leaf, size_t *leaf_len)
{
    size_t fl = id_len(fleet), p, kl;
    int k;
    uint32_t c = 0;

    if (!fl || !topic || len < 8 + fl + 2 || memcmp(topic, "qora/v1/", 8) != 0 ||
        memcmp(topic + 8, fleet, fl) != 0 || topic[8 + fl] != '/')
        return 0;
    p = 9 + fl;
    for (kl = 0; p + kl < len && topic[p + kl] != '/'; kl++)
        ;
    k = kind_of(topic + p, kl);
    if (!k)
        return 0;
    p += kl;
    if (!kind_has_leaf(k))
        return p == len ? k : 0;
    if (p == len || topic[p] != '/')
        return 0;
    p++;
    /* the leaf is the rest: an extra level would contain '/', which no leaf accepts */
    if (k == QN_TOPIC_MODEL) {
        if (!parse_chunk(topic + p, len - p, &c))
            return 0;
        if (chunk)
            *chunk = c;
    } else {
        if (!valid_id_n((const uint8_t *)topic + p, len - p))
            return 0;
        if (leaf)
            *leaf = topic + p;
        if (leaf_len)
            *leaf_len = len - p;
    }
    return k;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* Open a plain message map: size, CBOR rules, keys 0 and 1, the key set (required, plus
 * optional ones that may be absent). On QN_OK, r stands at the map's first entry and
 * *entries is its length. The key pass goes over the whole map before any field is read, so
 * an unknown key is malformed whatever the fields before it hold. */
static int open_map(const uint8_t *msg, size_t n, uint64_t type, uint32_t required,
                    uint32_t optional, qn_cbor_r *r, uint64_t *entries)
{
    qn_cbor_item it, v;
    uint64_t i;
    uint32_t seen = 0;
    int unknown = 0, have_ver = 0, have_type = 0;
    qn_cbor_item ver = {0, 0, 0, 0}, typ = {0, 0, 0, 0};

    if (n > QN_MAX_MESSAGE)
        return QN_E_RANGE;
    if (!msg || qn_cbor_check(msg, n, -1))
        return QN_E_MALFORMED;
    qn_cbor_r_init(r, msg, n);
    if (qn_cbor_next(r, &it) || it.major != 5u)
        return QN_E_MALFORMED;
    for (i = 0; i < it.value; i++) {
        qn_cbor_item key;
        size_t at;
        if (qn_cbor_next(r, &key))
            return QN_E_MALFORMED;
        at = r->pos;
        if (qn_cbor_next(r, &v))
            return QN_E_MALFORMED;
        r->pos = at;
        if (qn_cbor_skip(r))
            return QN_E_MALFORMED;
        if (key.value == K_VERSION) {
            ver = v;
            have_ver = 1;
        } else if (key.value == K_TYPE) {
            typ = v;
            have_type = 1;
        }
        if (key.value >= 32u)
            unknown = 1;
        else
            seen |= BIT(key.value);
    }
    /* Keys 0 and 1 must be integers (an unsigned or negative int; not bool, not float) before
     * their values count: a negative version is bad_version, a missing one malformed. */
    if (!have_ver || ver.major > 1u || !have_type || typ.major > 1u)
        return QN_E_MALFORMED;
    if (ver.major != 0u || ver.value != 1u)
        return QN_E_VERSION;
    if (typ.major != 0u || typ.value != type)
        return QN_E_TYPE;
    if (unknown || (seen & ~(required | optional)) || (seen & required) != required)
        return QN_E_MALFORMED;

    qn_cbor_r_init(r, msg, n);
    (void)qn_cbor_next(r, &it);          /* the map head, already read once */
    *entries = it.value;
    return QN_OK;
}

/* ---- field rules ------------------------------------------------------------------------
 * Each message's fields as a table: the key, how its value is read and stored, and its
 * limits. One loop (decode_fields) applies them, so the rules of section 5 sit in one place
 * per message. A wrong CBOR type is QN_E_MALFORMED; a value outside [lo, hi] is QN_E_RANGE. */

enum {
    F_U32,      /* uint stored as uint32_t at `at`, lo..hi */
    F_U8,       /* uint stored as uint8_t at `at`, lo..hi */
    F_ID,       /* id into char[QN_ID_MAX + 1] at `at` */
    F_DIGEST,   /* bstr of 32 bytes into uint8_t[32] at `at` */
    F_BSTR,     /* bstr: pointer at `at`, size_t length at `at2` */
    F_METHOD,   /* 1..64 printable ASCII into char[QN_METHOD_MAX + 1] at `at` */
    F_LAYOUT,   /* uints 1..2^24 into uint32_t[QN_LAYOUT_MAX] at `at`, count (uint8_t) at `at2` */
    F_SCALE     /* float32: uint8_t 1 at `at`, its bits (uint32_t) at `at2` */
};

typedef struct {
    uint8_t key, kind;
    uint16_t at, at2;
    uint32_t lo, hi;
} field_rule;

#define U32_MAX 0xFFFFFFFFu
#define RULE(key, kind, type, field, lo, hi) {key, kind, offsetof(type, field), 0, lo, hi}
#define RULE2(key, kind, type, field, field2) \
    {key, kind, offsetof(type, field), offsetof(type, field2), 0, 0}

/* ROUND (section 5). Version, deadline and quorum are uint64 in the protocol; a node keeps
 * uint32 (a deadline past 2106 or a larger count is refused with QN_E_RANGE). The model
 * version is not bounded by the round: versions count models, not rounds. */
static const field_rule ROUND_RULES[] = {
    RULE(K_FLEET, F_ID, qn_round, fleet, 0, 0),
    RULE(K_ROUND, F_U32, qn_round, round, 1, U32_MAX),
    RULE(K_ELEMENTS, F_U32, qn_round, elements, 1, MAX_ELEMENTS),
    RULE(K_MODEL_VERSION, F_U32, qn_round, version, 0, U32_MAX),
    RULE(K_DIGEST, F_DIGEST, qn_round, digest, 0, 0),
    RULE(K_DEADLINE, F_U32, qn_round, deadline, 0, U32_MAX),
    RULE(K_METHOD, F_METHOD, qn_round, method, 0, 0),
    RULE(K_MODE, F_U8, qn_round, mode, 0, 1),
    RULE(K_CHUNK_ELEMENTS, F_U32, qn_round, chunk_elements, 1, MAX_ELEMENTS),
    RULE(K_QUORUM, F_U32, qn_round, quorum, 1, U32_MAX),
    RULE2(K_LAYOUT, F_LAYOUT, qn_round, layout, n_layout),
    RULE(K_MODEL_CHUNKS, F_U32, qn_round, model_chunks, 1, MAX_CHUNKS),
};

/* MODEL (section 5): encoding 0 (Q16) or 1 (F32), never I8. */
static const field_rule MODEL_RULES[] = {
    RULE(K_FLEET, F_ID, qn_model_chunk, fleet, 0, 0),
    RULE(K_INDEX, F_U32, qn_model_chunk, index, 0, U32_MAX),
    RULE(K_COUNT, F_U32, qn_model_chunk, count, 1, MAX_CHUNKS),
    RULE(K_ENCODING, F_U8, qn_model_chunk, encoding, 0, 1),
    RULE(K_ELEMENTS, F_U32, qn_model_chunk, elements, 1, MAX_ELEMENTS),
    RULE2(K_DATA, F_BSTR, qn_model_chunk, data, data_len),
    RULE(K_MODEL_VERSION, F_U32, qn_model_chunk, version, 0, U32_MAX),
    RULE(K_DIGEST, F_DIGEST, qn_model_chunk, digest, 0, 0),
};

/* UPDATE (section 5): types only, like UpdateChunk.decode; qn_update_check does the values. */
static const field_rule UPDATE_RULES[] = {
    RULE(K_FLEET, F_ID, qn_update_chunk, fleet, 0, 0),
    RULE(K_NODE, F_ID, qn_update_chunk, node, 0, 0),
    RULE(K_ROUND, F_U32, qn_update_chunk, round, 0, U32_MAX),
    RULE(K_INDEX, F_U32, qn_update_chunk, index, 0, U32_MAX),
    RULE(K_COUNT, F_U32, qn_update_chunk, count, 0, U32_MAX),
    RULE(K_ENCODING, F_U8, qn_update_chunk, encoding, 0, 0xFF),
    RULE(K_ELEMENTS, F_U32, qn_update_chunk, elements, 0, U32_MAX),
    RULE2(K_DATA, F_BSTR, qn_update_chunk, data, data_len),
    RULE2(K_SCALE, F_SCALE, qn_update_chunk, has_scale, scale_bits),
    RULE(K_SAMPLES, F_U32, qn_update_chunk, samples, 0, U32_MAX),
};

#define N_RULES(t) (sizeof(t) / sizeof((t)[0]))

/* Fields are stored through byte offsets with memcpy: a copy of a value's representation into
 * a field of the same type, with no cast of the struct pointer to another type. */
static void store(void *out, size_t at, const void *v, size_t n)
{
    memcpy((uint8_t *)out + at, v, n);
}

/* n checked characters and a NUL into a char array at `at`. */
static void store_text(void *out, size_t at, const uint8_t *s, size_t n)
{
    static const char nul = '\0';
    store(out, at, s, n);
    store(out, at + n, &nul, 1);
}

static int read_field(qn_cbor_r *r, const field_rule *f, void *out)
{
    qn_cbor_item it;
    uint64_t k;

    if (qn_cbor_next(r, &it))
        return QN_E_MALFORMED;
    switch (f->kind) {
    case F_U32:
    case F_U8: {
        uint32_t v32;
        uint8_t v8;
        if (it.major != 0u)
            return QN_E_MALFORMED;       /* not a negative int, a bool or a float */
        if (it.value < f->lo || it.value > f->hi)
            return QN_E_RANGE;
        v32 = (uint32_t)it.value;
        v8 = (uint8_t)it.value;
        if (f->kind == F_U32)
            store(out, f->at, &v32, sizeof v32);
        else
            store(out, f->at, &v8, sizeof v8);
        return QN_OK;
    }
    case F_ID:
        if (it.major != 3u || !valid_id_n(it.data, (size_t)it.value))
            return QN_E_MALFORMED;
        store_text(out, f->at, it.data, (size_t)it.value);
        return QN_OK;
    case F_DIGEST:
        if (it.major != 2u || it.value != 32u)
            return QN_E_MALFORMED;
        store(out, f->at, it.data, 32);
        return QN_OK;
    case F_BSTR: {
        size_t n = (size_t)it.value;
        if (it.major != 2u)
            return QN_E_MALFORMED;
        store(out, f->at, &it.data, sizeof it.data);
        store(out, f->at2, &n, sizeof n);
        return QN_OK;
    }
    case F_METHOD:
        if (it.major != 3u || !printable_n(it.data, (size_t)it.value))
            return QN_E_MALFORMED;
        if (it.value > QN_METHOD_MAX)
            return QN_E_RANGE;           /* valid, but longer than this node keeps */
        store_text(out, f->at, it.data, (size_t)it.value);
        return QN_OK;
    case F_LAYOUT: {
        uint8_t count;
        if (it.major != 4u)
            return QN_E_MALFORMED;
        /* every entry is checked, also those past what the node keeps */
        for (k = 0; k < it.value; k++) {
            qn_cbor_item e;
            uint32_t v;
            if (qn_cbor_next(r, &e) || e.major != 0u)
                return QN_E_MALFORMED;
            if (e.value < 1u || e.value > MAX_ELEMENTS)
                return QN_E_RANGE;
            v = (uint32_t)e.value;
            if (k < QN_LAYOUT_MAX)
                store(out, f->at + (size_t)k * sizeof v, &v, sizeof v);
        }
        if (it.value > LAYOUT_PROTO_MAX || it.value > QN_LAYOUT_MAX)
            return QN_E_RANGE;
        count = (uint8_t)it.value;
        store(out, f->at2, &count, sizeof count);
        return QN_OK;
    }
    default: { /* F_SCALE */
        static const uint8_t one = 1;
        uint32_t bits = (uint32_t)it.value;
        if (it.major != 7u || it.ai != 26u)
            return QN_E_MALFORMED;       /* float32 only: not an int, not a bool */
        store(out, f->at, &one, 1);
        store(out, f->at2, &bits, sizeof bits);
        return QN_OK;
    }
    }
}

/* A plain message map of `type` whose fields are `rules` (keys in `optional` may be absent):
 * open_map's checks, then every field. out is zeroed first. */
static int decode_fields(const uint8_t *msg, size_t n, uint64_t type, const field_rule *rules,
                         size_t n_rules, uint32_t optional, void *out, size_t out_size)
{
    qn_cbor_r r;
    qn_cbor_item key;
    uint64_t entries, i;
    uint32_t required = BIT(K_VERSION) | BIT(K_TYPE);
    size_t j;
    int st;

    for (j = 0; j < n_rules; j++)
        required |= BIT(rules[j].key);
    required &= ~optional;
    st = open_map(msg, n, type, required, optional, &r, &entries);
    if (st)
        return st;
    memset(out, 0, out_size);
    for (i = 0; i < entries && !st; i++) {
        (void)qn_cbor_next(&r, &key);    /* open_map checked every key */
        if (key.value <= K_TYPE) {
            st = qn_cbor_skip(&r) ? QN_E_MALFORMED : QN_OK;
            continue;
        }
        for (j = 0; j < n_rules && rules[j].key != key.value; j++)
            ;
        st = j < n_rules ? read_field(&r, &rules[j], out) : QN_E_MALFORMED;
    }
    return st;
}

static uint32_t ceil_div(uint32_t a, uint32_t b) { return a / b + (a % b != 0u); }

int qn_round_decode(const uint8_t *msg, size_t n, qn_round *out)
{
    int st = decode_fields(msg, n, T_ROUND, ROUND_RULES, N_RULES(ROUND_RULES), 0, out, sizeof *out);
    if (st)
        return st;
    /* the one cross-field limit, once every field is known */
    if (out->model_chunks != ceil_div(out->elements, out->chunk_elements))
        return QN_E_RANGE;
    return QN_OK;
}

int qn_model_chunk_decode(const uint8_t *msg, size_t n, qn_model_chunk *out)
{
    int st = decode_fields(msg, n, T_MODEL, MODEL_RULES, N_RULES(MODEL_RULES), 0, out, sizeof *out);
    if (st)
        return st;
    if (out->count > out->elements || out->index >= out->count)
        return QN_E_RANGE;
    /* Whole elements, at least one, never more than the tensor holds. The exact size of
     * chunk `index` depends on the ROUND's chunk elements: the caller checks it. */
    if (out->data_len < 4 || out->data_len % 4u || out->data_len / 4u > out->elements)
        return QN_E_RANGE;
    return QN_OK;
}

int qn_update_decode(const uint8_t *msg, size_t n, qn_update_chunk *out)
{
    qn_cbor_r r;
    qn_cbor_item it;
    size_t i;

    if (n > QN_MAX_MESSAGE)
        return QN_E_RANGE;
    if (!msg || qn_cbor_check(msg, n, 17))
        return QN_E_MALFORMED;
    /* The envelope has exactly one byte form (section 7): tag 17, array(4), the protected
     * header bstr {1: 5}, an empty unprotected map, the payload bstr, a 32-byte tag bstr. */
    if (n < sizeof ENVELOPE_HEAD)
        return QN_E_MALFORMED;
    for (i = 0; i < sizeof ENVELOPE_HEAD; i++)
        if (msg[i] != ENVELOPE_HEAD[i])
            return QN_E_MALFORMED;
    qn_cbor_r_init(&r, msg, n);
    r.pos = sizeof ENVELOPE_HEAD;
    memset(out, 0, sizeof *out);
    if (qn_cbor_next(&r, &it) || it.major != 2u)
        return QN_E_MALFORMED;
    out->payload = it.data;
    out->payload_len = (size_t)it.value;
    if (qn_cbor_next(&r, &it) || it.major != 2u || it.value != 32u || r.pos != n)
        return QN_E_MALFORMED;
    out->tag = it.data;
    {
        /* decode_fields zeroes what it fills: keep the envelope's pointers aside */
        const uint8_t *payload = out->payload, *tag = out->tag;
        size_t payload_len = out->payload_len;
        int st = decode_fields(payload, payload_len, T_UPDATE, UPDATE_RULES, N_RULES(UPDATE_RULES),
                               BIT(K_SCALE), out, sizeof *out);
        out->payload = payload;
        out->payload_len = payload_len;
        out->tag = tag;
        return st;
    }
}

/* HMAC-SHA256(key, MAC_structure) of a payload (section 7). */
static void compute_tag(const uint8_t *payload, size_t n, const uint8_t key[32], uint8_t tag[32])
{
    qn_hmac_ctx h;
    uint8_t head[9];
    qn_cbor_w w;

    qn_cbor_w_init(&w, head, sizeof head);
    qn_cbor_head(&w, 2, (uint64_t)n);
    qn_hmac_init(&h, key, 32);
    qn_hmac_update(&h, MAC0_HEAD, sizeof MAC0_HEAD);
    qn_hmac_update(&h, head, w.len);
    qn_hmac_update(&h, payload, n);
    qn_hmac_final(&h, tag);
}

int qn_update_verify(const qn_update_chunk *c, const uint8_t key[32])
{
    uint8_t tag[32];
    if (!c->payload || !c->tag)
        return QN_E_MALFORMED;
    compute_tag(c->payload, c->payload_len, key, tag);
    return qn_equal32(tag, c->tag) ? QN_OK : QN_E_TAG;
}

int qn_update_check(const qn_update_chunk *c, const qn_round *r)
{
    uint32_t start, stop;

    if (c->round != r->round)
        return QN_E_ROUND;
    /* a node checks q16_16 rounds only; the limits keep the arithmetic below in uint32 */
    if (r->mode != 0 || r->chunk_elements < 1 || r->chunk_elements > MAX_ELEMENTS ||
        r->elements > MAX_ELEMENTS)
        return QN_E_RANGE;
    /* bad_chunk, then bad_shape, bad_encoding and samples, as check_update orders them */
    if (c->count != ceil_div(c->elements, r->chunk_elements) || c->index >= c->count)
        return QN_E_RANGE;
    if (c->elements != r->elements)
        return QN_E_RANGE;
    /* index < count = ceil(elements / C) and elements <= 2^24, so this stays below 2^25 */
    start = c->index * r->chunk_elements;
    stop = start + r->chunk_elements;
    if (stop > r->elements)
        stop = r->elements;
    if (c->encoding != 0 || c->has_scale || c->data_len != 4u * (size_t)(stop - start))
        return QN_E_RANGE;
    if (c->samples < 1 || c->samples > MAX_SAMPLES)
        return QN_E_RANGE;
    return QN_OK;
}

/* ---- encoding ------------------------------------------------------------------------- */

/* The UPDATE map in key order (it is its own deterministic encoding). Run twice: once with a
 * counting writer to learn the length for the envelope's bstr head, once for real. */
static void write_update_payload(qn_cbor_w *w, const char *fleet, size_t fl, const char *node,
                                 size_t nl, uint32_t round, uint32_t index, uint32_t count,
                                 uint32_t elements, uint32_t samples, const int32_t *values,
                                 size_t n_values)
{
    size_t i;
    qn_cbor_head(w, 5, 11);
    qn_cbor_uint(w, K_VERSION);
    qn_cbor_uint(w, 1);
    qn_cbor_uint(w, K_TYPE);
    qn_cbor_uint(w, T_UPDATE);
    qn_cbor_uint(w, K_FLEET);
    qn_cbor_tstr(w, fleet, fl);
    qn_cbor_uint(w, K_NODE);
    qn_cbor_tstr(w, node, nl);
    qn_cbor_uint(w, K_ROUND);
    qn_cbor_uint(w, round);
    qn_cbor_uint(w, K_INDEX);
    qn_cbor_uint(w, index);
    qn_cbor_uint(w, K_COUNT);
    qn_cbor_uint(w, count);
    qn_cbor_uint(w, K_ENCODING);
    qn_cbor_uint(w, 0);                  /* Q16 */
    qn_cbor_uint(w, K_ELEMENTS);
    qn_cbor_uint(w, elements);
    qn_cbor_uint(w, K_DATA);
    qn_cbor_head(w, 2, (uint64_t)n_values * 4u);
    for (i = 0; i < n_values; i++) {
        uint8_t b[4];
        qn_put_le32(b, values[i]);
        qn_cbor_raw(w, b, 4);
    }
    qn_cbor_uint(w, K_SAMPLES);
    qn_cbor_uint(w, samples);
}

size_t qn_update_encode(uint8_t *out, size_t cap, const char *fleet, const char *node,
                        uint32_t round, uint32_t index, uint32_t count, uint32_t elements,
                        uint32_t samples, const int32_t *values, size_t n_values,
                        const uint8_t key[32])
{
    size_t fl = id_len(fleet), nl = id_len(node), start, plen;
    qn_cbor_w w;
    uint8_t tag[32];

    /* What a node may send (the aggregator would reject the rest): ids, round >= 1, the
     * numbering and sizes of section 6, samples 1 .. 2^31 - 1. */
    if (!fl || !nl || round < 1 || elements < 1 || elements > MAX_ELEMENTS || count < 1 ||
        count > MAX_CHUNKS || count > elements || index >= count || samples < 1 ||
        samples > MAX_SAMPLES || n_values < 1 || n_values > elements || !values || !key || !out)
        return 0;

    qn_cbor_w_init(&w, 0, 0);
    write_update_payload(&w, fleet, fl, node, nl, round, index, count, elements, samples,
                         values, n_values);
    plen = w.len;

    qn_cbor_w_init(&w, out, cap);
    qn_cbor_raw(&w, ENVELOPE_HEAD, sizeof ENVELOPE_HEAD);
    qn_cbor_head(&w, 2, (uint64_t)plen);
    start = w.len;
    write_update_payload(&w, fleet, fl, node, nl, round, index, count, elements, samples,
                         values, n_values);
    if (w.err)
        return 0;
    compute_tag(out + start, plen, key, tag);
    qn_cbor_bstr(&w, tag, sizeof tag);
    return w.err ? 0 : w.len;
}

size_t qn_status_encode(uint8_t *out, size_t cap, const char *fleet, const char *node, int online)
{
    size_t fl = id_len(fleet), nl = id_len(node);
    qn_cbor_w w;

    if (!fl || !nl || !out)
        return 0;
    qn_cbor_w_init(&w, out, cap);
    qn_cbor_head(&w, 5, 5);
    qn_cbor_uint(&w, K_VERSION);
    qn_cbor_uint(&w, 1);
    qn_cbor_uint(&w, K_TYPE);
    qn_cbor_uint(&w, T_STATUS);
    qn_cbor_uint(&w, K_FLEET);
    qn_cbor_tstr(&w, fleet, fl);
    qn_cbor_uint(&w, K_NODE);
    qn_cbor_tstr(&w, node, nl);
    qn_cbor_uint(&w, K_ONLINE);
    qn_cbor_bool(&w, online);
    return w.err ? 0 : w.len;
}

size_t qn_hello_encode(uint8_t *out, size_t cap, const char *fleet, const char *node,
                       const char *firmware)
{
    size_t fl = id_len(fleet), nl = id_len(node), wl;
    qn_cbor_w w;

    if (!fl || !nl || !out || !firmware)
        return 0;
    wl = bounded_len(firmware, PROTO_TEXT_MAX);
    if (!printable_n((const uint8_t *)firmware, wl))
        return 0;
    qn_cbor_w_init(&w, out, cap);
    qn_cbor_head(&w, 5, 4);
    qn_cbor_uint(&w, K_VERSION);
    qn_cbor_uint(&w, 1);
    qn_cbor_uint(&w, K_FLEET);
    qn_cbor_tstr(&w, fleet, fl);
    qn_cbor_uint(&w, K_NODE);
    qn_cbor_tstr(&w, node, nl);
    qn_cbor_uint(&w, K_FIRMWARE);
    qn_cbor_tstr(&w, firmware, wl);
    return w.err ? 0 : w.len;
}
