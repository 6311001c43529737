/*
 * Qora Edge core — Krum and Multi-Krum (Blanchard et al., NeurIPS 2017).
 *
 * Distances are formed by direct subtraction, never as |a|^2 + |b|^2 - 2ab:
 * for full-weight models the expansion cancels catastrophically in float32
 * (Flower's new-API Krum picks the wrong client at d = 1e6 because of it).
 *
 * Q16.16: exact. Over a column block where every value lies in [-2^25, 2^25)
 * each difference is below 2^26, each square below 2^52, and a block of at most
 * 4096 columns sums in a uint64 without wrapping; other blocks add term by term
 * with saturation. Saturating sums of non-negative terms do not depend on the
 * order of addition, so blocking, threads and targets all give the same bits.
 * Float32: differences and squares in float within a block (16 partial sums),
 * block sums added in double. A block whose float sum overflows (values near
 * FLT_MAX) is redone in double, so only non-finite input gives a non-finite
 * distance, and that is reported as QORA_ERR_NONFINITE.
 *
 * Selection: score(i) = sum of the n - f - 2 smallest dist(i, j), j != i, in
 * ascending order; the m smallest (score, index) pairs win, so ties go to the
 * lower index.
 */
#include <string.h>

#include "internal.h"

#define LANES 16u

size_t qora_krum_select_scratch_size(size_t n)
{
    return qora__pad8(n * 8u) + qora__pad8(n);
}

size_t qora_multi_krum_scratch_size(size_t n, size_t d)
{
    (void)d;
    if (n == 0u || n > QORA_MAX_CLIENTS) {
        return 0;
    }
    return qora__pad8(n * n * 8u) + qora__pad8(n * 8u) + qora__pad8(n * 4u) +
           qora_krum_select_scratch_size(n);
}

static qora_status check_bounds(size_t n, size_t f, size_t m)
{
    if (n < 3u || f > (n - 3u) / 2u) { /* n >= 2f + 3 */
        return QORA_ERR_F;
    }
    if (m == 0u || m > n - 2u * f - 2u) {
        return QORA_ERR_M;
    }
    return QORA_OK;
}

/* ---- distances --------------------------------------------------------- */

static uint32_t biased(int32_t v)
{
    return (uint32_t)v ^ 0x80000000u;
}

/* Nonzero if some value of the block lies outside [-2^25, 2^25). */
static int block_is_wide(const int32_t *x, size_t n, size_t w, size_t stride)
{
    uint32_t out_of_range = 0;
    size_t i;
    size_t t;
    for (i = 0; i < n; i++) {
        const int32_t *row = x + i * stride;
        for (t = 0; t < w; t++) {
            out_of_range |= ((uint32_t)row[t] + 0x2000000u) & ~0x3ffffffu;
        }
    }
    return out_of_range != 0u;
}

static uint64_t pair_narrow_q16(const int32_t *a, const int32_t *b, size_t w)
{
    uint64_t s = 0;
    size_t t;
    for (t = 0; t < w; t++) {
        int32_t diff = a[t] - b[t]; /* |a|, |b| < 2^25: no overflow */
        s += (uint64_t)((int64_t)diff * diff);
    }
    return s;
}

#ifndef QORA_SMALL
/* One row against four: row a is read once for four distances. */
static void pair4_narrow_q16(const int32_t *a, const int32_t *const b[4], size_t w,
                             uint64_t s[4])
{
    uint64_t s0 = 0;
    uint64_t s1 = 0;
    uint64_t s2 = 0;
    uint64_t s3 = 0;
    size_t t;
    for (t = 0; t < w; t++) {
        int32_t av = a[t];
        int32_t d0 = av - b[0][t];
        int32_t d1 = av - b[1][t];
        int32_t d2 = av - b[2][t];
        int32_t d3 = av - b[3][t];
        s0 += (uint64_t)((int64_t)d0 * d0);
        s1 += (uint64_t)((int64_t)d1 * d1);
        s2 += (uint64_t)((int64_t)d2 * d2);
        s3 += (uint64_t)((int64_t)d3 * d3);
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
}
#endif

static uint64_t pair_wide_q16(const int32_t *a, const int32_t *b, size_t w, uint32_t *flags)
{
    uint64_t s = 0;
    size_t t;
    for (t = 0; t < w; t++) {
        uint32_t u = biased(a[t]);
        uint32_t v = biased(b[t]);
        uint32_t dd = u > v ? u - v : v - u;
        s = qora_sat_add_u64(s, (uint64_t)dd * dd, flags);
    }
    return s;
}

static void add_pair_u64(uint64_t *dist, size_t n, size_t i, size_t j, uint64_t s,
                         uint32_t *flags)
{
    uint64_t total = qora_sat_add_u64(dist[i * n + j], s, flags);
    dist[i * n + j] = total;
    dist[j * n + i] = total;
}

qora_status qora_sqdist_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                            uint64_t *dist, uint32_t *flags)
{
    size_t j0;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (dist == NULL) {
        return QORA_ERR_NULL;
    }
    for (j0 = 0; j0 < d; j0 += QORA_KRUM_COLS) {
        size_t w = d - j0 < QORA_KRUM_COLS ? d - j0 : QORA_KRUM_COLS;
        int wide = block_is_wide(x + j0, n, w, stride);
        size_t i;
        size_t j;
        for (i = 0; i < n; i++) {
            const int32_t *a = x + i * stride + j0;
            j = i + 1u;
#ifndef QORA_SMALL
            for (; !wide && j + 4u <= n; j += 4u) {
                const int32_t *b[4];
                uint64_t s[4];
                size_t q;
                for (q = 0; q < 4u; q++) {
                    b[q] = x + (j + q) * stride + j0;
                }
                pair4_narrow_q16(a, b, w, s);
                for (q = 0; q < 4u; q++) {
                    add_pair_u64(dist, n, i, j + q, s[q], flags);
                }
            }
#endif
            for (; j < n; j++) {
                const int32_t *b = x + j * stride + j0;
                uint64_t s = wide ? pair_wide_q16(a, b, w, flags) : pair_narrow_q16(a, b, w);
                add_pair_u64(dist, n, i, j, s, flags);
            }
        }
    }
    return QORA_OK;
}

#ifndef QORA_NO_F32
/* Squared distance in double, for pairs whose float sum overflowed. */
static double pair_f64(const float *a, const float *b, size_t w)
{
    double s = 0.0;
    size_t t;
    for (t = 0; t < w; t++) {
        double diff = (double)a[t] - (double)b[t];
        s += diff * diff;
    }
    return s;
}

/* One row against four, LANES partial sums each: row a is read once for four
 * distances and the sums have no serial dependency, so the loop vectorises. */
static void pair4_f32(const float *a, const float *const b[4], size_t w, double s[4])
{
    float p[4][LANES];
    size_t t = 0;
    size_t l;
    size_t q;
    for (q = 0; q < 4u; q++) {
        for (l = 0; l < LANES; l++) {
            p[q][l] = 0.0f;
        }
    }
    for (; t + LANES <= w; t += LANES) {
        for (l = 0; l < LANES; l++) {
            float av = a[t + l];
            float d0 = av - b[0][t + l];
            float d1 = av - b[1][t + l];
            float d2 = av - b[2][t + l];
            float d3 = av - b[3][t + l];
            p[0][l] += d0 * d0;
            p[1][l] += d1 * d1;
            p[2][l] += d2 * d2;
            p[3][l] += d3 * d3;
        }
    }
    for (q = 0; q < 4u; q++) {
        double sum = 0.0;
        size_t u;
        for (l = 0; l < LANES; l++) {
            sum += (double)p[q][l];
        }
        for (u = t; u < w; u++) {
            float diff = a[u] - b[q][u];
            sum += (double)(diff * diff);
        }
        if (sum - sum != 0.0) { /* overflowed in float, or non-finite input */
            sum = pair_f64(a, b[q], w);
        }
        s[q] = sum;
    }
}

qora_status qora_sqdist_f32(const float *x, size_t n, size_t d, size_t stride, double *dist)
{
    size_t j0;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (dist == NULL) {
        return QORA_ERR_NULL;
    }
    for (j0 = 0; j0 < d; j0 += QORA_KRUM_COLS) {
        size_t w = d - j0 < QORA_KRUM_COLS ? d - j0 : QORA_KRUM_COLS;
        size_t i;
        size_t j;
        for (i = 0; i < n; i++) {
            const float *a = x + i * stride + j0;
            /* pad the last tile with row a itself (distance 0, discarded) */
            for (j = i + 1u; j < n; j += 4u) {
                const float *b[4];
                double s[4];
                size_t q;
                for (q = 0; q < 4u; q++) {
                    b[q] = j + q < n ? x + (j + q) * stride + j0 : a;
                }
                pair4_f32(a, b, w, s);
                for (q = 0; q < 4u && j + q < n; q++) {
                    if (s[q] - s[q] != 0.0) {
                        return QORA_ERR_NONFINITE;
                    }
                    dist[i * n + j + q] += s[q];
                    dist[(j + q) * n + i] += s[q];
                }
            }
        }
    }
    if (n == 1u) {
        /* no pair to expose a non-finite value: scan the lone row */
        size_t t;
        for (t = 0; t < d; t++) {
            if (qora__nonfinite_f32(x[t])) {
                return QORA_ERR_NONFINITE;
            }
        }
    }
    return QORA_OK;
}
#endif

/* ---- selection --------------------------------------------------------- */

/* In-place heapsort, ascending (no recursion, no allocation). */
#define DEFINE_HEAPSORT(name, type)                                                      \
    static void name##_sift(type *v, size_t root, size_t len)                            \
    {                                                                                    \
        for (;;) {                                                                       \
            size_t child = 2u * root + 1u;                                               \
            type tmp;                                                                    \
            if (child >= len) {                                                          \
                return;                                                                  \
            }                                                                            \
            if (child + 1u < len && v[child + 1u] > v[child]) {                          \
                child++;                                                                 \
            }                                                                            \
            if (!(v[child] > v[root])) {                                                 \
                return;                                                                  \
            }                                                                            \
            tmp = v[root];                                                               \
            v[root] = v[child];                                                          \
            v[child] = tmp;                                                              \
            root = child;                                                                \
        }                                                                                \
    }                                                                                    \
    static void name(type *v, size_t len)                                                \
    {                                                                                    \
        size_t i;                                                                        \
        for (i = len / 2u; i-- > 0u;) {                                                  \
            name##_sift(v, i, len);                                                      \
        }                                                                                \
        for (i = len; i-- > 1u;) {                                                       \
            type tmp = v[0];                                                             \
            v[0] = v[i];                                                                 \
            v[i] = tmp;                                                                  \
            name##_sift(v, 0, i);                                                        \
        }                                                                                \
    }

/* Pick the m smallest (score, index) into selected[0..m-1], best first;
 * strict < keeps the lower index on a tie. */
#define DEFINE_PICK(name, type)                                                          \
    static void name(const type *scores, size_t n, size_t m, uint8_t *taken,           \
                     uint32_t *selected)                                                 \
    {                                                                                    \
        size_t pick;                                                                     \
        size_t i;                                                                        \
        memset(taken, 0, n);                                                             \
        for (pick = 0; pick < m; pick++) {                                               \
            size_t best = n;                                                             \
            for (i = 0; i < n; i++) {                                                    \
                if (taken[i] == 0u && (best == n || scores[i] < scores[best])) {         \
                    best = i;                                                            \
                }                                                                        \
            }                                                                            \
            taken[best] = 1u;                                                            \
            selected[pick] = (uint32_t)best;                                             \
        }                                                                                \
    }

DEFINE_HEAPSORT(sort_u64, uint64_t)
DEFINE_PICK(pick_u64, uint64_t)

static qora_status check_select(const void *dist, size_t n, size_t f, size_t m,
                                const void *scores, const void *selected, const void *scratch,
                                size_t scratch_size)
{
    if (dist == NULL || scores == NULL || selected == NULL || scratch == NULL) {
        return QORA_ERR_NULL;
    }
    if (n == 0u) {
        return QORA_ERR_EMPTY;
    }
    if (n > QORA_MAX_CLIENTS) {
        return QORA_ERR_N;
    }
    if (check_bounds(n, f, m) != QORA_OK) {
        return check_bounds(n, f, m);
    }
    if (scratch_size < qora_krum_select_scratch_size(n)) {
        return QORA_ERR_SCRATCH;
    }
    return QORA_OK;
}

qora_status qora_krum_select_u64(const uint64_t *dist, size_t n, size_t f, size_t m,
                                 uint64_t *scores, uint32_t *selected, void *scratch,
                                 size_t scratch_size, uint32_t *flags)
{
    uint64_t *tmp = (uint64_t *)scratch;
    size_t i;
    size_t j;
    qora_status st = check_select(dist, n, f, m, scores, selected, scratch, scratch_size);
    if (st != QORA_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        size_t len = 0;
        uint64_t s = 0;
        for (j = 0; j < n; j++) {
            if (j != i) {
                tmp[len++] = dist[i * n + j];
            }
        }
        sort_u64(tmp, len);
        for (j = 0; j < n - f - 2u; j++) {
            s = qora_sat_add_u64(s, tmp[j], flags);
        }
        scores[i] = s;
    }
    pick_u64(scores, n, m, (uint8_t *)QORA__AT(scratch, qora__pad8(n * 8u)), selected);
    return QORA_OK;
}

static qora_status check_mean(const void *x, size_t n, size_t d, size_t stride,
                              const uint32_t *selected, size_t m, const void *out)
{
    size_t s;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    if (selected == NULL || out == NULL) {
        return QORA_ERR_NULL;
    }
    if (m == 0u || m > n) {
        return QORA_ERR_M;
    }
    for (s = 0; s < m; s++) {
        if (selected[s] >= n) {
            return QORA_ERR_M;
        }
    }
    return QORA_OK;
}

qora_status qora_select_mean_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, qora_q16_t *out)
{
    size_t t;
    size_t s;
    qora_status st = check_mean(x, n, d, stride, selected, m, out);
    if (st != QORA_OK) {
        return st;
    }
    if (m == 1u) {
        memcpy(out, x + (size_t)selected[0] * stride, d * sizeof *out);
        return QORA_OK;
    }
    for (t = 0; t < d; t++) {
        int64_t acc = 0; /* m <= 65535 values of |v| <= 2^31: exact */
        for (s = 0; s < m; s++) {
            acc += x[(size_t)selected[s] * stride + t];
        }
        out[t] = (qora_q16_t)qora_div_round_i64(acc, m);
    }
    return QORA_OK;
}

/* Scratch of multi_krum: [dist n*n*8][scores n*8][selected n*4][select scratch]. */
typedef struct {
    void *dist;
    void *scores;
    uint32_t *selected;
    void *select_scratch;
} krum_plan;

static qora_status plan_krum(const void *x, size_t n, size_t d, size_t stride, size_t f,
                             size_t m, const void *out, void *scratch, size_t scratch_size,
                             krum_plan *kp)
{
    size_t off;
    qora_status st = qora__check_matrix(x, n, d, stride);
    if (st != QORA_OK) {
        return st;
    }
    st = check_bounds(n, f, m);
    if (st != QORA_OK) {
        return st;
    }
    if (out == NULL || scratch == NULL) {
        return QORA_ERR_NULL;
    }
    if (scratch_size < qora_multi_krum_scratch_size(n, d)) {
        return QORA_ERR_SCRATCH;
    }
    kp->dist = scratch;
    memset(scratch, 0, n * n * 8u);
    off = qora__pad8(n * n * 8u);
    kp->scores = QORA__AT(scratch, off);
    off += qora__pad8(n * 8u);
    kp->selected = (uint32_t *)QORA__AT(scratch, off);
    off += qora__pad8(n * 4u);
    kp->select_scratch = QORA__AT(scratch, off);
    return QORA_OK;
}

qora_status qora_multi_krum_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride,
                                size_t f, size_t m, qora_q16_t *out, uint64_t *scores,
                                uint32_t *selected, uint64_t *dev_sq, void *scratch,
                                size_t scratch_size, uint32_t *flags)
{
    krum_plan kp;
    qora_status st = plan_krum(x, n, d, stride, f, m, out, scratch, scratch_size, &kp);
    if (st != QORA_OK) {
        return st;
    }
    qora_sqdist_q16(x, n, d, stride, (uint64_t *)kp.dist, flags);
    qora_krum_select_u64((const uint64_t *)kp.dist, n, f, m, (uint64_t *)kp.scores,
                         kp.selected, kp.select_scratch, qora_krum_select_scratch_size(n),
                         flags);
    qora_select_mean_q16(x, n, d, stride, kp.selected, m, out);
    if (scores != NULL) {
        memcpy(scores, kp.scores, n * sizeof *scores);
    }
    if (selected != NULL) {
        memcpy(selected, kp.selected, m * sizeof *selected);
    }
    if (dev_sq != NULL) {
        qora_deviation_sq_q16(x, n, d, stride, out, dev_sq, flags);
    }
    return QORA_OK;
}

qora_status qora_krum_q16(const qora_q16_t *x, size_t n, size_t d, size_t stride, size_t f,
                          qora_q16_t *out, uint64_t *scores, uint32_t *selected,
                          uint64_t *dev_sq, void *scratch, size_t scratch_size,
                          uint32_t *flags)
{
    return qora_multi_krum_q16(x, n, d, stride, f, 1u, out, scores, selected, dev_sq, scratch,
                               scratch_size, flags);
}

#ifndef QORA_NO_F32
DEFINE_HEAPSORT(sort_f64, double)
DEFINE_PICK(pick_f64, double)

qora_status qora_krum_select_f64(const double *dist, size_t n, size_t f, size_t m,
                                 double *scores, uint32_t *selected, void *scratch,
                                 size_t scratch_size)
{
    double *tmp = (double *)scratch;
    size_t i;
    size_t j;
    qora_status st = check_select(dist, n, f, m, scores, selected, scratch, scratch_size);
    if (st != QORA_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        size_t len = 0;
        double s = 0.0;
        for (j = 0; j < n; j++) {
            if (j != i) {
                tmp[len++] = dist[i * n + j];
            }
        }
        sort_f64(tmp, len);
        for (j = 0; j < n - f - 2u; j++) {
            s += tmp[j]; /* ascending order: fixed, and the most accurate */
        }
        scores[i] = s;
    }
    pick_f64(scores, n, m, (uint8_t *)QORA__AT(scratch, qora__pad8(n * 8u)), selected);
    return QORA_OK;
}

qora_status qora_select_mean_f32(const float *x, size_t n, size_t d, size_t stride,
                                 const uint32_t *selected, size_t m, float *out)
{
    size_t t;
    size_t s;
    qora_status st = check_mean(x, n, d, stride, selected, m, out);
    if (st != QORA_OK) {
        return st;
    }
    if (m == 1u) {
        memcpy(out, x + (size_t)selected[0] * stride, d * sizeof *out);
        return QORA_OK;
    }
    for (t = 0; t < d; t++) {
        double acc = 0.0;
        for (s = 0; s < m; s++) {
            acc += (double)x[(size_t)selected[s] * stride + t];
        }
        out[t] = qora__to_f32(acc / (double)m);
    }
    return QORA_OK;
}

qora_status qora_multi_krum_f32(const float *x, size_t n, size_t d, size_t stride, size_t f,
                                size_t m, float *out, double *scores, uint32_t *selected,
                                double *dev_sq, void *scratch, size_t scratch_size,
                                uint32_t *flags)
{
    krum_plan kp;
    qora_status st = plan_krum(x, n, d, stride, f, m, out, scratch, scratch_size, &kp);
    (void)flags;
    if (st != QORA_OK) {
        return st;
    }
    st = qora_sqdist_f32(x, n, d, stride, (double *)kp.dist);
    if (st != QORA_OK) {
        return st;
    }
    qora_krum_select_f64((const double *)kp.dist, n, f, m, (double *)kp.scores, kp.selected,
                         kp.select_scratch, qora_krum_select_scratch_size(n));
    qora_select_mean_f32(x, n, d, stride, kp.selected, m, out);
    if (scores != NULL) {
        memcpy(scores, kp.scores, n * sizeof *scores);
    }
    if (selected != NULL) {
        memcpy(selected, kp.selected, m * sizeof *selected);
    }
    if (dev_sq != NULL) {
        qora_deviation_sq_f32(x, n, d, stride, out, dev_sq);
    }
    return QORA_OK;
}

qora_status qora_krum_f32(const float *x, size_t n, size_t d, size_t stride, size_t f,
                          float *out, double *scores, uint32_t *selected, double *dev_sq,
                          void *scratch, size_t scratch_size, uint32_t *flags)
{
    return qora_multi_krum_f32(x, n, d, stride, f, 1u, out, scores, selected, dev_sq, scratch,
                               scratch_size, flags);
}
#endif
