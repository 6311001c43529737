/*
 * Qora Edge core — golden-vector runner (see run_vectors.h).
 *
 * Portable C99: <stdint.h>, <stddef.h>, <string.h> and the qora headers only;
 * no printf, no malloc, no 64-bit arithmetic beyond what libgcc provides.
 *
 * Each aggregator case is run through the public API and then cross-checked:
 *   - the full call (rows laid out with the case's stride, padding filled with
 *     INT32_MIN / INT32_MAX so a read past d shows), checked against the
 *     reference CRC and, for explicit cases, element by element;
 *   - qora_deviation_sq_q16 against the aggregator's dev_sq;
 *   - the same aggregation in two column blocks (dev_sq added across blocks,
 *     as a column-sharded caller does) for the coordinate-wise methods, and
 *     qora_sqdist_q16 in two blocks + qora_krum_select_u64 +
 *     qora_select_mean_q16 for Krum;
 *   - scratch: exactly *_scratch_size() bytes, 8-aligned, with a canary
 *     behind it that must survive; flags words start with a canary bit that
 *     must survive (functions OR into flags and never clear them).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qora/aggregate.h"
#include "qora/q16.h"
#include "qora/status.h"

#include "golden_vectors.h"
#include "run_vectors.h"

#if QORA_GV_FORMAT != 1
#error "golden_vectors.h has a format this runner does not know: regenerate both"
#endif

#define MAX_DETAILS 10u
#define SCRATCH_CANARY_BYTES 16u

/* ---- static buffers (sized by the generator) ------------------------------ */
static int32_t g_x[QORA_GV_MAX_X];
static uint32_t g_w[QORA_GV_MAX_N];
static int32_t g_out[QORA_GV_MAX_D];
static int32_t g_out2[QORA_GV_MAX_D];
static uint64_t g_dev_sq[QORA_GV_MAX_N];
static uint64_t g_dev_sq2[QORA_GV_MAX_N];
static uint64_t g_dev_sq3[QORA_GV_MAX_N];
static uint32_t g_dev[QORA_GV_MAX_N];
static uint64_t g_scores[QORA_GV_MAX_N];
static uint64_t g_scores2[QORA_GV_MAX_N];
static uint32_t g_sel[QORA_GV_MAX_N];
static uint32_t g_sel2[QORA_GV_MAX_N];
static uint64_t g_dist[QORA_GV_MAX_N * QORA_GV_MAX_N];
static uint64_t g_scratch[(QORA_GV_SCRATCH_BYTES + SCRATCH_CANARY_BYTES + 7u) / 8u];
static int32_t g_f32_out[64];

/* ---- text ------------------------------------------------------------------ */
typedef struct {
    char buf[200];
    size_t len;
} line_t;

static void l_reset(line_t *l)
{
    l->len = 0;
    l->buf[0] = '\0';
}

static void l_str(line_t *l, const char *s)
{
    while (*s != '\0' && l->len + 1u < sizeof l->buf) {
        l->buf[l->len++] = *s++;
    }
    l->buf[l->len] = '\0';
}

static void l_u64(line_t *l, uint64_t v)
{
    char tmp[24];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (k > 0u && l->len + 1u < sizeof l->buf) {
        l->buf[l->len++] = tmp[--k];
    }
    l->buf[l->len] = '\0';
}

static void l_i64(line_t *l, int64_t v)
{
    if (v < 0) {
        l_str(l, "-");
        l_u64(l, (uint64_t)(-(v + 1)) + 1u);
    } else {
        l_u64(l, (uint64_t)v);
    }
}

static void l_hex32(line_t *l, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    int s;
    for (s = 28; s >= 0; s -= 4) {
        if (l->len + 1u < sizeof l->buf) {
            l->buf[l->len++] = digits[(v >> (unsigned)s) & 0xfu];
        }
    }
    l->buf[l->len] = '\0';
}

/* ---- CRC-32 (IEEE 802.3, reflected, bitwise) ------------------------------ */
typedef struct {
    uint32_t c;
} crc_t;

static void crc_init(crc_t *c)
{
    c->c = 0xffffffffu;
}

static void crc_byte(crc_t *c, uint32_t byte)
{
    int k;
    c->c ^= byte & 0xffu;
    for (k = 0; k < 8; k++) {
        c->c = (c->c >> 1) ^ (0xedb88320u & (0u - (c->c & 1u)));
    }
}

static void crc_u32(crc_t *c, uint32_t v)
{
    crc_byte(c, v);
    crc_byte(c, v >> 8);
    crc_byte(c, v >> 16);
    crc_byte(c, v >> 24);
}

static void crc_i32(crc_t *c, int32_t v)
{
    crc_u32(c, (uint32_t)v);
}

static void crc_u64(crc_t *c, uint64_t v)
{
    crc_u32(c, (uint32_t)(v & 0xffffffffu));
    crc_u32(c, (uint32_t)(v >> 32));
}

static void crc_i64(crc_t *c, int64_t v)
{
    crc_u64(c, (uint64_t)v);
}

static uint32_t crc_final(const crc_t *c)
{
    return c->c ^ 0xffffffffu;
}

/* ---- case context and mismatch reporting ----------------------------------- */
typedef struct {
    void (*emit)(const char *line);
    const char *name;
    unsigned details;
    int failed;
} ctx_t;

static void detail_begin(ctx_t *cx, line_t *l)
{
    l_reset(l);
    l_str(l, "detail ");
    l_str(l, cx->name);
    l_str(l, " ");
}

/* Counts a failure; returns nonzero if the detail line should be written. */
static int note_failure(ctx_t *cx)
{
    cx->failed = 1;
    cx->details++;
    if (cx->details == MAX_DETAILS + 1u) {
        line_t l;
        detail_begin(cx, &l);
        l_str(&l, "... further mismatches not shown");
        cx->emit(l.buf);
    }
    return cx->details <= MAX_DETAILS;
}

static void fail_msg(ctx_t *cx, const char *msg)
{
    if (note_failure(cx)) {
        line_t l;
        detail_begin(cx, &l);
        l_str(&l, msg);
        cx->emit(l.buf);
    }
}

static void check_i64(ctx_t *cx, const char *what, size_t idx, int64_t expected, int64_t got)
{
    if (expected != got && note_failure(cx)) {
        line_t l;
        detail_begin(cx, &l);
        l_str(&l, what);
        l_str(&l, "[");
        l_u64(&l, (uint64_t)idx);
        l_str(&l, "] expected=");
        l_i64(&l, expected);
        l_str(&l, " got=");
        l_i64(&l, got);
        cx->emit(l.buf);
    }
}

static void check_u64(ctx_t *cx, const char *what, size_t idx, uint64_t expected, uint64_t got)
{
    if (expected != got && note_failure(cx)) {
        line_t l;
        detail_begin(cx, &l);
        l_str(&l, what);
        l_str(&l, "[");
        l_u64(&l, (uint64_t)idx);
        l_str(&l, "] expected=");
        l_u64(&l, expected);
        l_str(&l, " got=");
        l_u64(&l, got);
        cx->emit(l.buf);
    }
}

/* Flags start as the canary; returns the flags without it, noting a cleared canary. */
static uint32_t strip_canary(ctx_t *cx, const char *what, size_t idx, uint32_t flags)
{
    if ((flags & QORA_GV_FLAG_CANARY) == 0u) {
        check_u64(cx, what, idx, QORA_GV_FLAG_CANARY, flags);
    }
    return flags & ~(uint32_t)QORA_GV_FLAG_CANARY;
}

static int finish_case(ctx_t *cx, uint32_t crc, uint32_t expected_crc)
{
    line_t l;
    if (crc != expected_crc) {
        line_t d;
        detail_begin(cx, &d);
        l_str(&d, "crc expected=");
        l_hex32(&d, expected_crc);
        l_str(&d, " got=");
        l_hex32(&d, crc);
        cx->emit(d.buf);
        cx->failed = 1;
    }
    l_reset(&l);
    l_str(&l, "case ");
    l_str(&l, cx->name);
    l_str(&l, cx->failed ? " FAIL crc=" : " ok crc=");
    l_hex32(&l, crc);
    cx->emit(l.buf);
    return cx->failed;
}

static void ctx_start(ctx_t *cx, void (*emit)(const char *line), const char *name)
{
    cx->emit = emit;
    cx->name = name;
    cx->details = 0;
    cx->failed = 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- scalar groups ---------------------------------------------------------- */
static uint32_t run_from_f32(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_q16_from_f32); i++) {
        const qora_gv_from_f32_t *e = &qora_gv_q16_from_f32[i];
        float x;
        qora_q16_t q = (qora_q16_t)QORA_GV_SENTINEL;
        qora_q16_t q2 = (qora_q16_t)QORA_GV_SENTINEL;
        uint32_t flags = QORA_GV_FLAG_CANARY;
        int32_t st;
        int32_t st2;
        memcpy(&x, &e->in, sizeof x);
        st = (int32_t)qora_q16_from_f32(x, &q, &flags);
        flags = strip_canary(cx, "flags_canary", i, flags);
        st2 = (int32_t)qora_q16_from_f32(x, &q2, NULL);
        crc_i32(&c, st);
        crc_i32(&c, q);
        crc_u32(&c, flags);
        check_i64(cx, "status", i, e->status, st);
        check_i64(cx, "q", i, e->q, q);
        check_u64(cx, "flags", i, e->flags, flags);
        check_i64(cx, "status_null_flags", i, e->status, st2);
        check_i64(cx, "q_null_flags", i, e->q, q2);
    }
    return crc_final(&c);
}

static uint32_t run_to_f32(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_q16_to_f32); i++) {
        float f = qora_q16_to_f32(qora_gv_q16_to_f32[i].q);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        crc_u32(&c, bits);
        check_u64(cx, "bits", i, qora_gv_q16_to_f32[i].bits, bits);
    }
    return crc_final(&c);
}

typedef qora_q16_t (*q16_binop)(qora_q16_t a, qora_q16_t b, uint32_t *flags);

static qora_q16_t sqrt_as_binop(qora_q16_t a, qora_q16_t b, uint32_t *flags)
{
    (void)b;
    return qora_q16_sqrt(a, flags);
}

static uint32_t run_q16_op(ctx_t *cx, const qora_gv_q16_op_t *ents, size_t count, q16_binop op)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < count; i++) {
        uint32_t flags = QORA_GV_FLAG_CANARY;
        qora_q16_t r = op(ents[i].a, ents[i].b, &flags);
        qora_q16_t r2 = op(ents[i].a, ents[i].b, NULL);
        flags = strip_canary(cx, "flags_canary", i, flags);
        crc_i32(&c, r);
        crc_u32(&c, flags);
        check_i64(cx, "r", i, ents[i].r, r);
        check_u64(cx, "flags", i, ents[i].flags, flags);
        check_i64(cx, "r_null_flags", i, ents[i].r, r2);
    }
    return crc_final(&c);
}

static uint32_t run_from_i64(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_q16_from_i64_sat); i++) {
        const qora_gv_from_i64_t *e = &qora_gv_q16_from_i64_sat[i];
        uint32_t flags = QORA_GV_FLAG_CANARY;
        qora_q16_t r = qora_q16_from_i64_sat(e->v, &flags);
        flags = strip_canary(cx, "flags_canary", i, flags);
        crc_i32(&c, r);
        crc_u32(&c, flags);
        check_i64(cx, "r", i, e->r, r);
        check_u64(cx, "flags", i, e->flags, flags);
        check_i64(cx, "r_null_flags", i, e->r, qora_q16_from_i64_sat(e->v, NULL));
    }
    return crc_final(&c);
}

static uint32_t run_isqrt(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_isqrt64); i++) {
        const qora_gv_isqrt_t *e = &qora_gv_isqrt64[i];
        uint32_t a = qora_isqrt64(e->x);
        uint32_t b = qora_sqrt_round_u64(e->x);
        crc_u32(&c, a);
        crc_u32(&c, b);
        check_u64(cx, "isqrt64", i, e->isqrt, a);
        check_u64(cx, "sqrt_round_u64", i, e->sqrt_round, b);
    }
    return crc_final(&c);
}

static uint32_t run_div_round(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_div_round_i64); i++) {
        const qora_gv_div_round_t *e = &qora_gv_div_round_i64[i];
        int64_t r = qora_div_round_i64(e->num, e->den);
        crc_i64(&c, r);
        check_i64(cx, "r", i, e->r, r);
    }
    return crc_final(&c);
}

static uint32_t run_sat_i64(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_sat_add_i64); i++) {
        const qora_gv_sat_i64_t *e = &qora_gv_sat_add_i64[i];
        uint32_t flags = QORA_GV_FLAG_CANARY;
        int64_t r = qora_sat_add_i64(e->a, e->b, &flags);
        flags = strip_canary(cx, "flags_canary", i, flags);
        crc_i64(&c, r);
        crc_u32(&c, flags);
        check_i64(cx, "r", i, e->r, r);
        check_u64(cx, "flags", i, e->flags, flags);
        check_i64(cx, "r_null_flags", i, e->r, qora_sat_add_i64(e->a, e->b, NULL));
    }
    return crc_final(&c);
}

static uint32_t run_sat_u64(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_sat_add_u64); i++) {
        const qora_gv_sat_u64_t *e = &qora_gv_sat_add_u64[i];
        uint32_t flags = QORA_GV_FLAG_CANARY;
        uint64_t r = qora_sat_add_u64(e->a, e->b, &flags);
        flags = strip_canary(cx, "flags_canary", i, flags);
        crc_u64(&c, r);
        crc_u32(&c, flags);
        check_u64(cx, "r", i, e->r, r);
        check_u64(cx, "flags", i, e->flags, flags);
        check_u64(cx, "r_null_flags", i, e->r, qora_sat_add_u64(e->a, e->b, NULL));
    }
    return crc_final(&c);
}

static uint32_t run_f32_array(ctx_t *cx)
{
    crc_t c;
    size_t i;
    crc_init(&c);
    for (i = 0; i < COUNT(qora_gv_q16_from_f32_array); i++) {
        const qora_gv_f32_array_t *e = &qora_gv_q16_from_f32_array[i];
        static float in[64];
        size_t bad = (size_t)QORA_GV_SENTINEL;
        uint32_t flags = QORA_GV_FLAG_CANARY;
        int32_t st;
        size_t j;
        size_t converted;
        if (e->count > COUNT(in)) {
            fail_msg(cx, "array longer than the runner's buffer");
            continue;
        }
        memcpy(in, e->in, e->count * sizeof in[0]);
        for (j = 0; j < COUNT(g_f32_out); j++) {
            g_f32_out[j] = (int32_t)QORA_GV_SENTINEL;
        }
        st = (int32_t)qora_q16_from_f32_array(in, e->count, g_f32_out, &bad, &flags);
        flags = strip_canary(cx, "flags_canary", i, flags);
        crc_i32(&c, st);
        crc_u32(&c, flags);
        check_i64(cx, "status", i, e->status, st);
        check_u64(cx, "flags", i, e->flags, flags);
        if (st != (int32_t)QORA_OK) {
            crc_u32(&c, (uint32_t)bad);
            check_u64(cx, "bad_index", i, e->bad_index, (uint64_t)bad);
            converted = bad < e->count ? bad : e->count;
        } else {
            converted = e->count;
        }
        for (j = 0; j < converted; j++) {
            crc_i32(&c, g_f32_out[j]);
            if (j < e->converted) {
                check_i64(cx, "out", j, e->out[j], g_f32_out[j]);
            }
        }
        check_u64(cx, "converted", i, e->converted, (uint64_t)converted);
    }
    return crc_final(&c);
}

static uint32_t run_to_f32_array(ctx_t *cx)
{
    crc_t c;
    size_t i;
    size_t count = COUNT(qora_gv_q16_to_f32_array);
    static int32_t q[128];
    static float f[128];
    crc_init(&c);
    if (count > COUNT(q)) {
        fail_msg(cx, "array longer than the runner's buffer");
        return 0;
    }
    for (i = 0; i < count; i++) {
        q[i] = qora_gv_q16_to_f32_array[i].q;
    }
    qora_q16_to_f32_array(q, count, f);
    for (i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &f[i], sizeof bits);
        crc_u32(&c, bits);
        check_u64(cx, "bits", i, qora_gv_q16_to_f32_array[i].bits, bits);
    }
    return crc_final(&c);
}

/* ---- aggregator cases -------------------------------------------------------- */
static uint32_t xorshift32(uint32_t s)
{
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
}

/* Lay out the case's n x d matrix in g_x with its stride (or packed when the
 * stride is smaller than d, for the stride error cases); weights in g_w. */
static void layout(const qora_gv_agg_case_t *k)
{
    size_t n = k->n;
    size_t d = k->d;
    size_t pitch = k->stride >= k->d ? k->stride : k->d;
    size_t total = n * pitch;
    size_t i;
    size_t t;
    for (i = 0; i < total && i < COUNT(g_x); i++) {
        g_x[i] = (i & 1u) != 0u ? INT32_MAX : INT32_MIN;
    }
    if (k->x != NULL) {
        for (i = 0; i < n; i++) {
            for (t = 0; t < d; t++) {
                g_x[i * pitch + t] = k->x[i * d + t];
            }
        }
    } else if (k->seed != 0u) {
        uint32_t s = k->seed;
        uint32_t sh = 32u - k->lo_bits;
        int64_t off = (int64_t)1 << (k->lo_bits - 1u);
        for (i = 0; i < n; i++) {
            for (t = 0; t < d; t++) {
                s = xorshift32(s);
                g_x[i * pitch + t] = (int32_t)((int64_t)(s >> sh) - off);
            }
        }
        if (k->w_bits != 0u) {
            for (i = 0; i < n; i++) {
                s = xorshift32(s);
                g_w[i] = s >> (32u - k->w_bits);
            }
        }
    }
}

static size_t scratch_need(const qora_gv_agg_case_t *k, size_t n, size_t d)
{
    switch (k->method) {
    case QORA_GV_FEDAVG:
        return qora_fedavg_scratch_size(n, d);
    case QORA_GV_TRIMMED_MEAN:
        return qora_trimmed_mean_scratch_size(n, d);
    case QORA_GV_MEDIAN:
        return qora_median_scratch_size(n, d);
    default:
        return qora_multi_krum_scratch_size(n, d);
    }
}

static void scratch_arm(size_t need)
{
    unsigned char *p = (unsigned char *)g_scratch;
    size_t i;
    for (i = 0; i < SCRATCH_CANARY_BYTES; i++) {
        p[need + i] = (unsigned char)(0xa5u ^ i);
    }
}

static int scratch_intact(size_t need)
{
    const unsigned char *p = (const unsigned char *)g_scratch;
    size_t i;
    for (i = 0; i < SCRATCH_CANARY_BYTES; i++) {
        if (p[need + i] != (unsigned char)(0xa5u ^ i)) {
            return 0;
        }
    }
    return 1;
}

/* One call of the case's method on columns [j0, j0 + d) of the laid-out
 * matrix. Returns the status, or QORA_ERR_SCRATCH (with a detail line) when
 * the runner's scratch is too small. */
static int32_t call_method(ctx_t *cx, const qora_gv_agg_case_t *k, const uint32_t *w,
                           size_t j0, size_t d, int32_t *out, uint64_t *scores, uint32_t *sel,
                           uint64_t *dev_sq, uint32_t *flags)
{
    size_t n = k->n;
    size_t stride = k->stride;
    const int32_t *x = g_x + j0;
    size_t need = scratch_need(k, n, d);
    int32_t st;
    if (need + SCRATCH_CANARY_BYTES > sizeof g_scratch) {
        line_t l;
        cx->failed = 1;
        detail_begin(cx, &l);
        l_str(&l, "scratch needs ");
        l_u64(&l, (uint64_t)need);
        l_str(&l, " bytes, the runner has ");
        l_u64(&l, (uint64_t)(sizeof g_scratch - SCRATCH_CANARY_BYTES));
        l_str(&l, " (raise QORA_GV_SCRATCH_BYTES)");
        cx->emit(l.buf);
        return (int32_t)QORA_ERR_SCRATCH;
    }
    scratch_arm(need);
    switch (k->method) {
    case QORA_GV_FEDAVG:
        st = (int32_t)qora_fedavg_q16(x, n, d, stride, w, out, dev_sq, g_scratch, need, flags);
        break;
    case QORA_GV_TRIMMED_MEAN:
        st = (int32_t)qora_trimmed_mean_q16(x, n, d, stride, k->param, out, dev_sq, g_scratch,
                                            need, flags);
        break;
    case QORA_GV_MEDIAN:
        st = (int32_t)qora_median_q16(x, n, d, stride, out, dev_sq, g_scratch, need, flags);
        break;
    case QORA_GV_KRUM:
        st = (int32_t)qora_krum_q16(x, n, d, stride, k->param, out, scores, sel, dev_sq,
                                    g_scratch, need, flags);
        break;
    default:
        st = (int32_t)qora_multi_krum_q16(x, n, d, stride, k->param, k->m, out, scores, sel,
                                          dev_sq, g_scratch, need, flags);
        break;
    }
    if (!scratch_intact(need)) {
        fail_msg(cx, "wrote past the end of its scratch");
    }
    return st;
}

static void fill_results(size_t n, size_t d)
{
    size_t i;
    for (i = 0; i < d && i < COUNT(g_out); i++) {
        g_out[i] = (int32_t)QORA_GV_SENTINEL;
        g_out2[i] = (int32_t)QORA_GV_SENTINEL;
    }
    for (i = 0; i < n && i < COUNT(g_dev_sq); i++) {
        g_dev_sq[i] = 0;
        g_dev_sq2[i] = 0;
        g_dev_sq3[i] = 0;
        g_dev[i] = QORA_GV_SENTINEL;
        g_scores[i] = QORA_GV_SENTINEL;
        g_scores2[i] = QORA_GV_SENTINEL;
        g_sel[i] = QORA_GV_SENTINEL;
        g_sel2[i] = QORA_GV_SENTINEL;
    }
}

/* Cross-checks of a successful case against the results of the full call. */
static void cross_check(ctx_t *cx, const qora_gv_agg_case_t *k, const uint32_t *w,
                        uint32_t flags)
{
    size_t n = k->n;
    size_t d = k->d;
    size_t d0 = d >= 2u ? d / 2u : d;
    size_t i;
    int krum = k->method == QORA_GV_KRUM || k->method == QORA_GV_MULTI_KRUM;
    uint32_t fl_dev = QORA_GV_FLAG_CANARY;
    uint32_t fl_blk = QORA_GV_FLAG_CANARY;
    int32_t st;

    /* deviation_sq from the aggregate equals the aggregator's own dev_sq */
    st = (int32_t)qora_deviation_sq_q16(g_x, n, d, k->stride, g_out, g_dev_sq2, &fl_dev);
    fl_dev = strip_canary(cx, "deviation_sq_flags_canary", 0, fl_dev);
    check_i64(cx, "deviation_sq_status", 0, 0, st);
    for (i = 0; i < n; i++) {
        check_u64(cx, "deviation_sq", i, g_dev_sq[i], g_dev_sq2[i]);
    }
    if ((fl_dev & ~flags) != 0u) {
        fail_msg(cx, "deviation_sq flagged a saturation the aggregator did not");
    }

    if (!krum) {
        /* the same aggregation in two column blocks, dev_sq added across them */
        st = call_method(cx, k, w, 0, d0, g_out2, NULL, NULL, g_dev_sq3, &fl_blk);
        check_i64(cx, "block0_status", 0, 0, st);
        if (d0 < d) {
            st = call_method(cx, k, w, d0, d - d0, g_out2 + d0, NULL, NULL, g_dev_sq3, &fl_blk);
            check_i64(cx, "block1_status", 0, 0, st);
        }
        fl_blk = strip_canary(cx, "block_flags_canary", 0, fl_blk);
        check_u64(cx, "block_flags", 0, flags, fl_blk);
        for (i = 0; i < d; i++) {
            check_i64(cx, "block_out", i, g_out[i], g_out2[i]);
        }
        for (i = 0; i < n; i++) {
            check_u64(cx, "block_dev_sq", i, g_dev_sq[i], g_dev_sq3[i]);
        }
        return;
    }

    /* Krum in pieces: sqdist over two column blocks, select, mean */
    {
        size_t need = qora_krum_select_scratch_size(n);
        size_t m = k->m;
        for (i = 0; i < n * n; i++) {
            g_dist[i] = 0;
        }
        st = (int32_t)qora_sqdist_q16(g_x, n, d0, k->stride, g_dist, &fl_blk);
        check_i64(cx, "sqdist0_status", 0, 0, st);
        if (d0 < d) {
            st = (int32_t)qora_sqdist_q16(g_x + d0, n, d - d0, k->stride, g_dist, &fl_blk);
            check_i64(cx, "sqdist1_status", 0, 0, st);
        }
        if (need + SCRATCH_CANARY_BYTES > sizeof g_scratch) {
            fail_msg(cx, "krum_select scratch larger than the runner's");
            return;
        }
        scratch_arm(need);
        st = (int32_t)qora_krum_select_u64(g_dist, n, k->param, m, g_scores2, g_sel2, g_scratch,
                                           need, &fl_blk);
        check_i64(cx, "krum_select_status", 0, 0, st);
        if (!scratch_intact(need)) {
            fail_msg(cx, "krum_select wrote past the end of its scratch");
        }
        fl_blk = strip_canary(cx, "pieces_flags_canary", 0, fl_blk);
        check_u64(cx, "pieces_flags", 0, flags, fl_blk | fl_dev);
        for (i = 0; i < n; i++) {
            check_u64(cx, "pieces_scores", i, g_scores[i], g_scores2[i]);
        }
        for (i = 0; i < m; i++) {
            check_u64(cx, "pieces_selected", i, g_sel[i], g_sel2[i]);
        }
        st = (int32_t)qora_select_mean_q16(g_x, n, d, k->stride, g_sel2, m, g_out2);
        check_i64(cx, "select_mean_status", 0, 0, st);
        for (i = 0; i < d; i++) {
            check_i64(cx, "select_mean_out", i, g_out[i], g_out2[i]);
        }
    }
}

static int run_agg_case(void (*emit)(const char *line), const qora_gv_agg_case_t *k)
{
    ctx_t cx;
    crc_t c;
    size_t n = k->n;
    size_t d = k->d;
    size_t i;
    int krum = k->method == QORA_GV_KRUM || k->method == QORA_GV_MULTI_KRUM;
    const uint32_t *w = NULL;
    uint32_t flags = QORA_GV_FLAG_CANARY;
    int32_t st;

    ctx_start(&cx, emit, k->name);
    if (n > QORA_GV_MAX_N || d > QORA_GV_MAX_D ||
        n * (k->stride >= d ? k->stride : d) > QORA_GV_MAX_X) {
        fail_msg(&cx, "case larger than the runner's buffers");
        return finish_case(&cx, 0, k->crc);
    }
    layout(k);
    if (k->weights != NULL) {
        w = k->weights;
    } else if (k->w_bits != 0u) {
        w = g_w;
    }
    fill_results(n, d);

    st = call_method(&cx, k, w, 0, d, g_out, g_scores, g_sel, g_dev_sq, &flags);
    flags = strip_canary(&cx, "flags_canary", 0, flags);
    if (st == (int32_t)QORA_OK) {
        qora_deviation_finish_q16(g_dev_sq, n, g_dev);
    }

    crc_init(&c);
    crc_i32(&c, st);
    crc_u32(&c, flags);
    if (st == (int32_t)QORA_OK) {
        for (i = 0; i < d; i++) {
            crc_i32(&c, g_out[i]);
        }
        for (i = 0; i < n; i++) {
            crc_u64(&c, g_dev_sq[i]);
        }
        for (i = 0; i < n; i++) {
            crc_u32(&c, g_dev[i]);
        }
        if (krum) {
            for (i = 0; i < n; i++) {
                crc_u64(&c, g_scores[i]);
            }
            for (i = 0; i < k->m; i++) {
                crc_u32(&c, g_sel[i]);
            }
        }
    }

    check_i64(&cx, "status", 0, k->status, st);
    check_u64(&cx, "flags", 0, k->flags, flags);
    if (st == (int32_t)QORA_OK && k->status == (int32_t)QORA_OK) {
        if (k->out != NULL) {
            for (i = 0; i < d; i++) {
                check_i64(&cx, "out", i, k->out[i], g_out[i]);
            }
            for (i = 0; i < n; i++) {
                check_u64(&cx, "dev_sq", i, k->dev_sq[i], g_dev_sq[i]);
            }
            for (i = 0; i < n; i++) {
                check_u64(&cx, "dev", i, k->dev[i], g_dev[i]);
            }
            if (krum) {
                for (i = 0; i < n; i++) {
                    check_u64(&cx, "scores", i, k->scores[i], g_scores[i]);
                }
                for (i = 0; i < k->m; i++) {
                    check_u64(&cx, "selected", i, k->selected[i], g_sel[i]);
                }
            }
        }
        cross_check(&cx, k, w, flags);
    }
    return finish_case(&cx, crc_final(&c), k->crc);
}

/* ---- driver -------------------------------------------------------------------- */
typedef uint32_t (*group_fn)(ctx_t *cx);

static uint32_t run_add(ctx_t *cx)
{
    return run_q16_op(cx, qora_gv_q16_add, COUNT(qora_gv_q16_add), qora_q16_add);
}

static uint32_t run_sub(ctx_t *cx)
{
    return run_q16_op(cx, qora_gv_q16_sub, COUNT(qora_gv_q16_sub), qora_q16_sub);
}

static uint32_t run_mul(ctx_t *cx)
{
    return run_q16_op(cx, qora_gv_q16_mul, COUNT(qora_gv_q16_mul), qora_q16_mul);
}

static uint32_t run_div(ctx_t *cx)
{
    return run_q16_op(cx, qora_gv_q16_div, COUNT(qora_gv_q16_div), qora_q16_div);
}

static uint32_t run_sqrt(ctx_t *cx)
{
    return run_q16_op(cx, qora_gv_q16_sqrt, COUNT(qora_gv_q16_sqrt), sqrt_as_binop);
}

typedef struct {
    const char *name;
    group_fn fn;
    uint32_t crc;
} group_t;

static const group_t groups[] = {
    {"q16_from_f32", run_from_f32, QORA_GV_CRC_Q16_FROM_F32},
    {"q16_to_f32", run_to_f32, QORA_GV_CRC_Q16_TO_F32},
    {"q16_add", run_add, QORA_GV_CRC_Q16_ADD},
    {"q16_sub", run_sub, QORA_GV_CRC_Q16_SUB},
    {"q16_mul", run_mul, QORA_GV_CRC_Q16_MUL},
    {"q16_div", run_div, QORA_GV_CRC_Q16_DIV},
    {"q16_sqrt", run_sqrt, QORA_GV_CRC_Q16_SQRT},
    {"q16_from_i64_sat", run_from_i64, QORA_GV_CRC_Q16_FROM_I64_SAT},
    {"isqrt64", run_isqrt, QORA_GV_CRC_ISQRT64},
    {"div_round_i64", run_div_round, QORA_GV_CRC_DIV_ROUND_I64},
    {"sat_add_i64", run_sat_i64, QORA_GV_CRC_SAT_ADD_I64},
    {"sat_add_u64", run_sat_u64, QORA_GV_CRC_SAT_ADD_U64},
    {"q16_from_f32_array", run_f32_array, QORA_GV_CRC_Q16_FROM_F32_ARRAY},
    {"q16_to_f32_array", run_to_f32_array, QORA_GV_CRC_Q16_TO_F32_ARRAY},
};

int qora_run_vectors(void (*emit)(const char *line))
{
    size_t i;
    unsigned total = 0;
    unsigned failed = 0;
    line_t l;
    for (i = 0; i < COUNT(groups); i++) {
        ctx_t cx;
        uint32_t crc;
        ctx_start(&cx, emit, groups[i].name);
        crc = groups[i].fn(&cx);
        failed += (unsigned)finish_case(&cx, crc, groups[i].crc);
        total++;
    }
    for (i = 0; i < QORA_GV_AGG_CASES; i++) {
        failed += (unsigned)run_agg_case(emit, &qora_gv_agg_cases[i]);
        total++;
    }
    if (total != QORA_GV_TOTAL_CASES) {
        failed++; /* runner and header disagree on the case list */
        emit("detail runner case count differs from golden_vectors.h");
    }
    l_reset(&l);
    l_str(&l, "summary ");
    l_u64(&l, (uint64_t)(total - (failed < total ? failed : total)));
    l_str(&l, "/");
    l_u64(&l, (uint64_t)total);
    emit(l.buf);
    return (int)failed;
}
