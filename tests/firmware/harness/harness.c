/* Test harness for firmware/core's hash, frame, cbor and wire code.
 *
 * One command per stdin line, one answer per stdout line ("ok ..." or "err ..."), so pytest
 * keeps one process (built with ASan + UBSan) for a whole session and every hypothesis
 * example costs a pipe round trip, not a process start. Binary arguments and results are
 * hex ("-" for empty). Every input a decoder sees is copied into a heap block of exactly its
 * size first: a read one byte past the end is then an ASan report, not a silent success.
 *
 * The harness itself is ordinary hosted C (stdio, malloc); only the code under test is held
 * to the firmware's rules. */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qnode/cbor.h"
#include "qnode/frame.h"
#include "qnode/hash.h"
#include "qnode/wire.h"

#define LINE_MAX_BYTES (8u << 20)
#define MAX_ARGS 8192

static char line[LINE_MAX_BYTES];
static char *argv_[MAX_ARGS];
static int argc_;

/* ---- plumbing -------------------------------------------------------------------------- */

static void die(const char *msg)
{
    fprintf(stderr, "harness: %s\n", msg);
    exit(2);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex argument into an exact-size heap block (at least 1 byte allocated so the pointer is
 * never NULL; *n may be 0). The caller frees it. */
static uint8_t *unhex(const char *s, size_t *n)
{
    size_t len = strcmp(s, "-") == 0 ? 0 : strlen(s), i;
    uint8_t *p;
    if (len % 2)
        die("odd hex length");
    *n = len / 2;
    p = malloc(*n ? *n : 1);
    if (!p)
        die("out of memory");
    for (i = 0; i < *n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            die("bad hex");
        p[i] = (uint8_t)(hi * 16 + lo);
    }
    return p;
}

/* Hex argument as a NUL-terminated string (may contain any byte but NUL). */
static char *unhex_str(const char *s)
{
    size_t n;
    uint8_t *p = unhex(s, &n);
    char *out = malloc(n + 1);
    if (!out)
        die("out of memory");
    memcpy(out, p, n);
    out[n] = '\0';
    free(p);
    return out;
}

static void put_hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    if (n == 0) {
        fputc('-', stdout);
        return;
    }
    for (i = 0; i < n; i++) {
        fputc(digits[p[i] >> 4], stdout);
        fputc(digits[p[i] & 15], stdout);
    }
}

static unsigned long long num(const char *s) { return strtoull(s, NULL, 0); }

static void need(int n)
{
    if (argc_ != n + 1)
        die("wrong number of arguments");
}

/* ---- hash -------------------------------------------------------------------------------- */

static void cmd_sha256(void)
{
    size_t n;
    uint8_t out[32], *p;
    need(1);
    p = unhex(argv_[1], &n);
    qn_sha256(p, n, out);
    printf("ok ");
    put_hex(out, 32);
    free(p);
}

/* sha256x DATA PIECE REPEAT: DATA fed REPEAT times, in updates of PIECE bytes (streaming) */
static void cmd_sha256x(void)
{
    size_t n, piece, rep, i, off;
    uint8_t out[32], *p;
    qn_sha256_ctx c;
    need(3);
    p = unhex(argv_[1], &n);
    piece = (size_t)num(argv_[2]);
    rep = (size_t)num(argv_[3]);
    if (piece == 0)
        die("piece 0");
    qn_sha256_init(&c);
    for (i = 0; i < rep; i++)
        for (off = 0; off < n; off += piece)
            qn_sha256_update(&c, p + off, n - off < piece ? n - off : piece);
    qn_sha256_final(&c, out);
    printf("ok ");
    put_hex(out, 32);
    free(p);
}

/* hmac KEY MSG PIECE: streaming when PIECE > 0, the one-shot function when 0 */
static void cmd_hmac(void)
{
    size_t kn, mn, piece, off;
    uint8_t out[32], *k, *m;
    need(3);
    k = unhex(argv_[1], &kn);
    m = unhex(argv_[2], &mn);
    piece = (size_t)num(argv_[3]);
    if (piece == 0) {
        qn_hmac_sha256(k, kn, m, mn, out);
    } else {
        qn_hmac_ctx c;
        qn_hmac_init(&c, k, kn);
        for (off = 0; off < mn; off += piece)
            qn_hmac_update(&c, m + off, mn - off < piece ? mn - off : piece);
        qn_hmac_final(&c, out);
    }
    printf("ok ");
    put_hex(out, 32);
    free(k);
    free(m);
}

static void cmd_equal32(void)
{
    size_t an, bn;
    uint8_t *a, *b;
    need(2);
    a = unhex(argv_[1], &an);
    b = unhex(argv_[2], &bn);
    if (an != 32 || bn != 32)
        die("equal32 wants 32 bytes");
    printf("ok %d", qn_equal32(a, b));
    free(a);
    free(b);
}

/* ---- frame ------------------------------------------------------------------------------- */

static void cmd_crc32(void)
{
    size_t n;
    uint8_t *p;
    need(2);
    p = unhex(argv_[2], &n);
    printf("ok %08lx", (unsigned long)qn_crc32((uint32_t)num(argv_[1]), p, n));
    free(p);
}

/* cobsenc DATA CAP PIECE: PIECE 0 = qn_cobs_encode, else the streaming writer in pieces */
static void cmd_cobsenc(void)
{
    size_t n, cap, piece, len, off;
    uint8_t *p, *out;
    need(3);
    p = unhex(argv_[1], &n);
    cap = (size_t)num(argv_[2]);
    piece = (size_t)num(argv_[3]);
    out = malloc(cap ? cap : 1);
    if (piece == 0) {
        len = qn_cobs_encode(p, n, out, cap);
    } else {
        qn_cobs_w w;
        qn_cobs_w_init(&w, out, cap);
        for (off = 0; off < n; off += piece)
            qn_cobs_w_put(&w, p + off, n - off < piece ? n - off : piece);
        len = qn_cobs_w_end(&w);
    }
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(p);
    free(out);
}

/* cobsdec DATA CAP: CAP "inplace" decodes into the input's own block */
static void cmd_cobsdec(void)
{
    size_t n, len;
    uint8_t *p;
    need(2);
    p = unhex(argv_[1], &n);
    if (strcmp(argv_[2], "inplace") == 0) {
        len = qn_cobs_decode(p, n, p, n);
        if (len == SIZE_MAX) {
            printf("err");
        } else {
            printf("ok ");
            put_hex(p, len);
        }
    } else {
        size_t cap = (size_t)num(argv_[2]);
        uint8_t *out = malloc(cap ? cap : 1);
        len = qn_cobs_decode(p, n, out, cap);
        if (len == SIZE_MAX) {
            printf("err");
        } else {
            printf("ok ");
            put_hex(out, len);
        }
        free(out);
    }
    free(p);
}

/* frameenc TYPE CONTENT CAP PIECE: PIECE 0 = qn_frame_encode, else qn_frame_w in pieces */
static void cmd_frameenc(void)
{
    size_t n, cap, piece, len, off;
    uint8_t *p, *out;
    uint8_t type;
    need(4);
    type = (uint8_t)num(argv_[1]);
    p = unhex(argv_[2], &n);
    cap = (size_t)num(argv_[3]);
    piece = (size_t)num(argv_[4]);
    out = malloc(cap ? cap : 1);
    if (piece == 0) {
        len = qn_frame_encode(type, p, n, out, cap);
    } else {
        qn_frame_w w;
        qn_frame_w_begin(&w, type, out, cap);
        for (off = 0; off < n; off += piece)
            qn_frame_w_put(&w, p + off, n - off < piece ? n - off : piece);
        len = qn_frame_w_end(&w);
    }
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(p);
    free(out);
}

static void cmd_publish(void)
{
    size_t tn, pn, cap, len;
    uint8_t *t, *p, *out;
    need(3);
    t = unhex(argv_[1], &tn);
    p = unhex(argv_[2], &pn);
    cap = (size_t)num(argv_[3]);
    out = malloc(cap ? cap : 1);
    len = qn_frame_publish(out, cap, (const char *)t, tn, p, pn);
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(t);
    free(p);
    free(out);
}

static void cmd_pubparse(void)
{
    size_t n, tl, pl;
    uint8_t *c;
    const char *topic;
    const uint8_t *payload;
    need(1);
    c = unhex(argv_[1], &n);
    if (qn_frame_publish_parse(c, n, &topic, &tl, &payload, &pl)) {
        printf("err");
    } else {
        if ((const uint8_t *)topic < c || (const uint8_t *)topic + tl > c + n || payload < c ||
            payload + pl > c + n)
            die("publish_parse points outside the content");
        printf("ok ");
        put_hex((const uint8_t *)topic, tl);
        printf(" ");
        put_hex(payload, pl);
    }
    free(c);
}

/* rx CAP STREAM: feed every byte; print each frame ("F<type>:<content>") and drop ("D"),
 * then "| frames_ok crc_errors cobs_errors overflows len overflow" */
static void cmd_rx(void)
{
    size_t cap, n, i;
    uint8_t *s, *buf;
    qn_frame_rx rx;
    need(2);
    cap = (size_t)num(argv_[1]);
    s = unhex(argv_[2], &n);
    buf = malloc(cap ? cap : 1);
    qn_frame_rx_init(&rx, buf, cap);
    printf("ok");
    for (i = 0; i < n; i++) {
        int r = qn_frame_rx_byte(&rx, s[i]);
        if (r == 1) {
            if (rx.content < buf || rx.content + rx.content_len > buf + cap)
                die("frame content outside the buffer");
            printf(" F%u:", rx.type);
            put_hex(rx.content, rx.content_len);
        } else if (r == -1) {
            printf(" D");
        } else if (r != 0) {
            die("qn_frame_rx_byte returned something else");
        }
    }
    printf(" | %lu %lu %lu %lu %lu %d", (unsigned long)rx.frames_ok,
           (unsigned long)rx.crc_errors, (unsigned long)rx.cobs_errors,
           (unsigned long)rx.overflows, (unsigned long)rx.len, rx.overflow);
    free(s);
    free(buf);
}

/* ---- cbor -------------------------------------------------------------------------------- */

/* cborw CAP OP...: CAP "count" uses the counting writer. Ops: u:N i:N h:MAJOR:N b:HEX t:HEX
 * f:BITS (float32 bits in hex) T F r:HEX */
static void cmd_cborw(void)
{
    size_t cap = 0;
    int counting, a;
    uint8_t *out = NULL;
    qn_cbor_w w;
    if (argc_ < 2)
        die("cborw CAP OPS");
    counting = strcmp(argv_[1], "count") == 0;
    if (!counting) {
        cap = (size_t)num(argv_[1]);
        out = malloc(cap ? cap : 1);
    }
    qn_cbor_w_init(&w, out, cap);
    for (a = 2; a < argc_; a++) {
        const char *op = argv_[a];
        size_t n;
        uint8_t *p;
        if (strncmp(op, "u:", 2) == 0) {
            qn_cbor_uint(&w, num(op + 2));
        } else if (strncmp(op, "i:", 2) == 0) {
            qn_cbor_int(&w, strtoll(op + 2, NULL, 10));
        } else if (strncmp(op, "h:", 2) == 0) {
            char *end;
            unsigned long major = strtoul(op + 2, &end, 10);
            qn_cbor_head(&w, (uint8_t)major, num(end + 1));
        } else if (strncmp(op, "b:", 2) == 0) {
            p = unhex(op + 2, &n);
            qn_cbor_bstr(&w, p, n);
            free(p);
        } else if (strncmp(op, "t:", 2) == 0) {
            p = unhex(op + 2, &n);
            qn_cbor_tstr(&w, (const char *)p, n);
            free(p);
        } else if (strncmp(op, "r:", 2) == 0) {
            p = unhex(op + 2, &n);
            qn_cbor_raw(&w, p, n);
            free(p);
        } else if (strncmp(op, "f:", 2) == 0) {
            uint32_t bits = (uint32_t)strtoul(op + 2, NULL, 16);
            float f;
            memcpy(&f, &bits, 4);
            qn_cbor_f32(&w, f);
        } else if (strcmp(op, "T") == 0 || strcmp(op, "F") == 0) {
            qn_cbor_bool(&w, op[0] == 'T');
        } else {
            die("unknown cbor op");
        }
    }
    if (counting) {
        printf("ok %lu", (unsigned long)w.len);
    } else if (w.err) {
        printf("err %lu", (unsigned long)w.len);
    } else {
        printf("ok ");
        put_hex(out, w.len);
    }
    free(out);
}

/* cborr DATA: qn_cbor_next until the end; items as MAJOR.AI.VALUE[.DATA] then "end" or "err" */
static void cmd_cborr(void)
{
    size_t n;
    uint8_t *p;
    qn_cbor_r r;
    qn_cbor_item it;
    need(1);
    p = unhex(argv_[1], &n);
    qn_cbor_r_init(&r, p, n);
    printf("ok");
    while (r.pos < r.len) {
        if (qn_cbor_next(&r, &it)) {
            printf(" err");
            break;
        }
        printf(" %u.%u.%llu", it.major, it.ai, (unsigned long long)it.value);
        if (it.major == 2 || it.major == 3) {
            if (it.data < p || it.data + it.value > p + n)
                die("string outside the input");
            printf(".");
            put_hex(it.data, (size_t)it.value);
        }
    }
    if (r.pos >= r.len && !r.err)
        printf(" end");
    free(p);
}

static void cmd_cborskip(void)
{
    size_t n;
    uint8_t *p;
    qn_cbor_r r;
    need(1);
    p = unhex(argv_[1], &n);
    qn_cbor_r_init(&r, p, n);
    if (qn_cbor_skip(&r))
        printf("err");
    else
        printf("ok %lu", (unsigned long)r.pos);
    free(p);
}

static void cmd_cborcheck(void)
{
    size_t n;
    uint8_t *p;
    need(2);
    p = unhex(argv_[1], &n);
    printf(qn_cbor_check(p, n, (int32_t)strtol(argv_[2], NULL, 10)) ? "err" : "ok");
    free(p);
}

/* ---- wire -------------------------------------------------------------------------------- */

static void cmd_validid(void)
{
    char *s;
    need(1);
    s = unhex_str(argv_[1]);
    printf("ok %d", qn_valid_id(s));
    free(s);
}

/* topic FLEET KIND LEAF CAP (strings in hex; LEAF "none" for no leaf) */
static void cmd_topic(void)
{
    char *fleet, *kind, *leaf = NULL, *out;
    size_t cap, len;
    need(4);
    fleet = unhex_str(argv_[1]);
    kind = unhex_str(argv_[2]);
    if (strcmp(argv_[3], "none") != 0)
        leaf = unhex_str(argv_[3]);
    cap = (size_t)num(argv_[4]);
    out = malloc(cap ? cap : 1);
    len = qn_topic(out, cap, fleet, kind, leaf);
    if (len == 0) {
        printf("err");
    } else {
        if (len + 1 > cap || out[len] != '\0' || strlen(out) != len)
            die("qn_topic: bad termination");
        printf("ok %s", out);
    }
    free(fleet);
    free(kind);
    free(leaf);
    free(out);
}

static void cmd_tparse(void)
{
    size_t n;
    uint8_t *t;
    char *fleet;
    uint32_t chunk = 0xFFFFFFFFu;
    const char *leaf = NULL;
    size_t leaf_len = 0;
    int k;
    need(2);
    t = unhex(argv_[1], &n);
    fleet = unhex_str(argv_[2]);
    k = qn_topic_parse((const char *)t, n, fleet, &chunk, &leaf, &leaf_len);
    printf("ok %d %lu ", k, (unsigned long)chunk);
    if (leaf) {
        if ((const uint8_t *)leaf < t || (const uint8_t *)leaf + leaf_len > t + n)
            die("leaf outside the topic");
        put_hex((const uint8_t *)leaf, leaf_len);
    } else {
        printf("none");
    }
    free(t);
    free(fleet);
}

static void print_str_hex(const char *s) { put_hex((const uint8_t *)s, strlen(s)); }

static void print_round(const qn_round *a)
{
    unsigned i;
    printf("ok ");
    print_str_hex(a->fleet);
    printf(" %lu %lu %lu %lu %lu %lu %lu ", (unsigned long)a->round, (unsigned long)a->version,
           (unsigned long)a->deadline, (unsigned long)a->chunk_elements,
           (unsigned long)a->quorum, (unsigned long)a->elements,
           (unsigned long)a->model_chunks);
    put_hex(a->digest, 32);
    printf(" ");
    print_str_hex(a->method);
    printf(" %u %u", a->mode, a->n_layout);
    for (i = 0; i < a->n_layout; i++)
        printf("%c%lu", i ? ',' : ' ', (unsigned long)a->layout[i]);
}

static void cmd_round(void)
{
    size_t n;
    uint8_t *p;
    qn_round a;
    int st;
    need(1);
    p = unhex(argv_[1], &n);
    st = qn_round_decode(p, n, &a);
    if (st)
        printf("err %d", st);
    else
        print_round(&a);
    free(p);
}

static void cmd_model(void)
{
    size_t n;
    uint8_t *p;
    qn_model_chunk m;
    int st;
    need(1);
    p = unhex(argv_[1], &n);
    st = qn_model_chunk_decode(p, n, &m);
    if (st) {
        printf("err %d", st);
    } else {
        if (m.data < p || m.data + m.data_len > p + n)
            die("model data outside the message");
        printf("ok ");
        print_str_hex(m.fleet);
        printf(" %lu %lu %lu %lu %u ", (unsigned long)m.version, (unsigned long)m.index,
               (unsigned long)m.count, (unsigned long)m.elements, m.encoding);
        put_hex(m.digest, 32);
        printf(" ");
        put_hex(m.data, m.data_len);
    }
    free(p);
}

/* update FLEET NODE ROUND INDEX COUNT ELEMENTS SAMPLES VALUES KEY CAP: VALUES are the int32
 * values as little-endian bytes in hex (unpacked here by hand, not with the code under test) */
static void cmd_update(void)
{
    char *fleet, *node;
    size_t vn, kn, cap, len, i, nv;
    uint8_t *vb, *key, *out;
    int32_t *values;
    need(10);
    fleet = unhex_str(argv_[1]);
    node = unhex_str(argv_[2]);
    vb = unhex(argv_[8], &vn);
    key = unhex(argv_[9], &kn);
    cap = (size_t)num(argv_[10]);
    if (vn % 4 || kn != 32)
        die("update: values must be 4-byte groups, key 32 bytes");
    nv = vn / 4;
    values = malloc(nv ? nv * sizeof *values : 1);
    for (i = 0; i < nv; i++) {
        uint32_t u = (uint32_t)vb[4 * i] | (uint32_t)vb[4 * i + 1] << 8 |
                     (uint32_t)vb[4 * i + 2] << 16 | (uint32_t)vb[4 * i + 3] << 24;
        int64_t s = u >= 0x80000000u ? (int64_t)u - 0x100000000LL : (int64_t)u;
        values[i] = (int32_t)s;
    }
    out = malloc(cap ? cap : 1);
    len = qn_update_encode(out, cap, fleet, node, (uint32_t)num(argv_[3]), (uint32_t)num(argv_[4]),
                           (uint32_t)num(argv_[5]), (uint32_t)num(argv_[6]),
                           (uint32_t)num(argv_[7]), values, nv, key);
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(fleet);
    free(node);
    free(vb);
    free(key);
    free(values);
    free(out);
}

static void print_update(const qn_update_chunk *u, const uint8_t *p, size_t n)
{
    if (u->data < p || u->data + u->data_len > p + n || u->payload < p ||
        u->payload + u->payload_len > p + n || u->tag < p || u->tag + 32 > p + n)
        die("update pointers outside the message");
    printf("ok ");
    print_str_hex(u->fleet);
    printf(" ");
    print_str_hex(u->node);
    printf(" %lu %lu %lu %lu %lu %u %u %08lx ", (unsigned long)u->round, (unsigned long)u->index,
           (unsigned long)u->count, (unsigned long)u->elements, (unsigned long)u->samples,
           u->encoding, u->has_scale, (unsigned long)u->scale_bits);
    put_hex(u->data, u->data_len);
    printf(" ");
    put_hex(u->payload, u->payload_len);
    printf(" ");
    put_hex(u->tag, 32);
}

static void cmd_udec(void)
{
    size_t n;
    uint8_t *p;
    qn_update_chunk u;
    int st;
    need(1);
    p = unhex(argv_[1], &n);
    st = qn_update_decode(p, n, &u);
    if (st)
        printf("err %d", st);
    else
        print_update(&u, p, n);
    free(p);
}

/* uverify MSG KEY: decode, then verify */
static void cmd_uverify(void)
{
    size_t n, kn;
    uint8_t *p, *key;
    qn_update_chunk u;
    int st;
    need(2);
    p = unhex(argv_[1], &n);
    key = unhex(argv_[2], &kn);
    if (kn != 32)
        die("key must be 32 bytes");
    st = qn_update_decode(p, n, &u);
    if (st == QN_OK)
        st = qn_update_verify(&u, key);
    printf("ok %d", st);
    free(p);
    free(key);
}

/* ucheck MSG ROUND: decode both, then qn_update_check */
static void cmd_ucheck(void)
{
    size_t n, rn;
    uint8_t *p, *rb;
    qn_update_chunk u;
    qn_round a;
    int st;
    need(2);
    p = unhex(argv_[1], &n);
    rb = unhex(argv_[2], &rn);
    st = qn_round_decode(rb, rn, &a);
    if (st)
        die("ucheck: the round does not decode");
    st = qn_update_decode(p, n, &u);
    if (st == QN_OK)
        st = qn_update_check(&u, &a);
    printf("ok %d", st);
    free(p);
    free(rb);
}

static void cmd_status(void)
{
    char *fleet, *node;
    uint8_t out[256];
    size_t len;
    need(3);
    fleet = unhex_str(argv_[1]);
    node = unhex_str(argv_[2]);
    len = qn_status_encode(out, sizeof out, fleet, node, (int)num(argv_[3]));
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(fleet);
    free(node);
}

static void cmd_hello(void)
{
    char *fleet, *node, *fw;
    size_t cap, len;
    uint8_t *out;
    need(4);
    fleet = unhex_str(argv_[1]);
    node = unhex_str(argv_[2]);
    fw = unhex_str(argv_[3]);
    cap = (size_t)num(argv_[4]);
    out = malloc(cap ? cap : 1);
    len = qn_hello_encode(out, cap, fleet, node, fw);
    if (len == 0) {
        printf("err 0");
    } else {
        printf("ok ");
        put_hex(out, len);
    }
    free(fleet);
    free(node);
    free(fw);
    free(out);
}

static void cmd_le32(void)
{
    size_t n;
    uint8_t *p, b[4];
    int32_t v;
    need(1);
    p = unhex(argv_[1], &n);
    if (n != 4)
        die("le32 wants 4 bytes");
    v = qn_le32(p);
    qn_put_le32(b, v);
    printf("ok %ld ", (long)v);
    put_hex(b, 4);
    free(p);
}

/* ---- fuzz -------------------------------------------------------------------------------- */

static uint32_t rng_state;

static uint32_t rng(void)
{
    /* xorshift32: reproducible from the seed the test prints on failure */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

/* Run one decoder on an exact-size copy; returns its status, shifted to 0..15 for counting. */
static int run_decoder(const char *kind, const uint8_t *msg, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    int st = 0;
    memcpy(p, msg, n);
    if (strcmp(kind, "round") == 0) {
        qn_round a;
        st = qn_round_decode(p, n, &a);
    } else if (strcmp(kind, "model") == 0) {
        qn_model_chunk m;
        st = qn_model_chunk_decode(p, n, &m);
        if (st == QN_OK && (m.data < p || m.data + m.data_len > p + n))
            die("fuzz: model data outside the message");
    } else if (strcmp(kind, "update") == 0) {
        qn_update_chunk u;
        static const uint8_t key[32];
        st = qn_update_decode(p, n, &u);
        if (st == QN_OK) {
            if (u.data < p || u.data + u.data_len > p + n || u.tag + 32 > p + n)
                die("fuzz: update pointers outside the message");
            st = qn_update_verify(&u, key);
        }
    } else if (strcmp(kind, "cbor") == 0) {
        qn_cbor_r r;
        qn_cbor_item it;
        st = qn_cbor_check(p, n, 17) ? -1 : 0;
        qn_cbor_r_init(&r, p, n);
        while (qn_cbor_next(&r, &it) == 0)
            ;
        qn_cbor_r_init(&r, p, n);
        (void)qn_cbor_skip(&r);
    } else if (strcmp(kind, "frame") == 0) {
        qn_frame_rx rx;
        size_t cap = 1 + rng() % 96, i;
        uint8_t *buf = malloc(cap);
        qn_frame_rx_init(&rx, buf, cap);
        for (i = 0; i < n; i++)
            if (qn_frame_rx_byte(&rx, p[i]) == 1 &&
                (rx.content < buf || rx.content + rx.content_len > buf + cap))
                die("fuzz: frame content outside the buffer");
        {
            uint8_t *out = malloc(n + 8);
            size_t d = qn_cobs_decode(p, n, out, n + 8);
            (void)d;
            free(out);
        }
        free(buf);
    } else {
        die("fuzz: unknown decoder");
    }
    free(p);
    return st;
}

/* fuzz KIND SEED ITER MSG: ITER mutants of MSG (bit flips, byte changes, truncation,
 * insertion, deletion, splices); prints how many got each status. */
static void cmd_fuzz(void)
{
    size_t n, iter, i, cap;
    uint8_t *base, *m;
    unsigned long counts[16] = {0};
    const char *kind;
    int s;
    need(4);
    kind = argv_[1];
    rng_state = (uint32_t)num(argv_[2]) | 1u;
    iter = (size_t)num(argv_[3]);
    base = unhex(argv_[4], &n);
    cap = n + 64;
    m = malloc(cap);
    for (i = 0; i < iter; i++) {
        size_t len = n, k, edits = 1 + rng() % 4;
        memcpy(m, base, n);
        for (k = 0; k < edits; k++) {
            uint32_t op = rng() % 6;
            size_t at = len ? rng() % len : 0;
            if (op == 0 && len) {
                m[at] ^= (uint8_t)(1u << (rng() % 8));
            } else if (op == 1 && len) {
                m[at] = (uint8_t)rng();
            } else if (op == 2) {
                len = len ? rng() % len : 0;                       /* truncate */
            } else if (op == 3 && len < cap) {
                memmove(m + at + 1, m + at, len - at);             /* insert */
                m[at] = (uint8_t)rng();
                len++;
            } else if (op == 4 && len) {
                memmove(m + at, m + at + 1, len - at - 1);         /* delete */
                len--;
            } else if (op == 5 && len) {
                /* an interesting byte: a head with a huge argument, a break, a tag ... */
                static const uint8_t special[] = {0x1B, 0x5B, 0x7B, 0x9B, 0xBB, 0xFF, 0x9F,
                                                  0xBF, 0xD1, 0xFA, 0xF5, 0x00, 0x18, 0xFB};
                m[at] = special[rng() % sizeof special];
            }
        }
        s = run_decoder(kind, m, len);
        if (s > 0 || s < -15)
            die("fuzz: status out of range");
        counts[-s]++;
    }
    printf("ok");
    for (i = 0; i < 8; i++)
        printf(" %lu", counts[i]);
    free(base);
    free(m);
}

/* ---- main -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} COMMANDS[] = {
    {"sha256", cmd_sha256},   {"sha256x", cmd_sha256x},   {"hmac", cmd_hmac},
    {"equal32", cmd_equal32}, {"crc32", cmd_crc32},       {"cobsenc", cmd_cobsenc},
    {"cobsdec", cmd_cobsdec}, {"frameenc", cmd_frameenc}, {"publish", cmd_publish},
    {"pubparse", cmd_pubparse}, {"rx", cmd_rx},           {"cborw", cmd_cborw},
    {"cborr", cmd_cborr},     {"cborskip", cmd_cborskip}, {"cborcheck", cmd_cborcheck},
    {"validid", cmd_validid}, {"topic", cmd_topic},       {"tparse", cmd_tparse},
    {"round", cmd_round},     {"model", cmd_model},       {"update", cmd_update},
    {"udec", cmd_udec},       {"uverify", cmd_uverify},   {"ucheck", cmd_ucheck},
    {"status", cmd_status},   {"hello", cmd_hello},       {"le32", cmd_le32},
    {"fuzz", cmd_fuzz},
};

int main(void)
{
    while (fgets(line, sizeof line, stdin)) {
        char *save = NULL, *tok;
        size_t i, len = strlen(line);
        if (len && line[len - 1] != '\n' && !feof(stdin))
            die("line too long");
        argc_ = 0;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
            if (argc_ == MAX_ARGS)
                die("too many arguments");
            argv_[argc_++] = tok;
        }
        if (argc_ == 0)
            continue;
        for (i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
            if (strcmp(COMMANDS[i].name, argv_[0]) == 0)
                break;
        if (i == sizeof COMMANDS / sizeof COMMANDS[0])
            die("unknown command");
        COMMANDS[i].fn();
        putchar('\n');
        fflush(stdout);
    }
    return 0;
}
