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

static void add_pair_u64(uint64_t *dist, size_t n, size_t i, size_t j, uint64_t s,
                         uint32_t *flags)
{
    uint64_t total = qora_sat_add_u64(dist[i * n + j], s, flags);
    dist[i * n + j] = total;
    dist[j * n + i] = total;
}

#ifndef QORA_SMALL
#define LANES_Q16 8u

/* Two rows against four over a narrow block (all |v| < 2^25, see above), with
 * LANES_Q16 uint64 partial sums per pair: the Q16.16 twin of tile_f32. No
 * partial sum can wrap: w <= 4096 squares below 2^52. */
static void tile_narrow_q16(const int32_t *const a[2], const int32_t *const b[4], size_t w,
                            uint64_t s[2][4])
{
    uint64_t p[2][4][LANES_Q16];
    size_t t = 0;
    size_t l;
    size_t q;
    size_t r;
    for (r = 0; r < 2u; r++) {
        for (q = 0; q < 4u; q++) {
            for (l = 0; l < LANES_Q16; l++) {
                p[r][q][l] = 0u;
            }
        }
    }
/* written out per pair: compilers then vectorise across the lanes */
#define QORA__SQ(r, q, av)                                                               \
    do {                                                                                 \
        int32_t dd_ = (av) - b[q][t + l]; /* |a|, |b| < 2^25: no overflow */         \
        p[r][q][l] += (uint64_t)((int64_t)dd_ * dd_);                                   \
    } while (0)
    for (; t + LANES_Q16 <= w; t += LANES_Q16) {
        for (l = 0; l < LANES_Q16; l++) {
            int32_t a0 = a[0][t + l];
            int32_t a1 = a[1][t + l];
            QORA__SQ(0, 0, a0);
            QORA__SQ(0, 1, a0);
            QORA__SQ(0, 2, a0);
            QORA__SQ(0, 3, a0);
            QORA__SQ(1, 0, a1);
            QORA__SQ(1, 1, a1);
            QORA__SQ(1, 2, a1);
            QORA__SQ(1, 3, a1);
        }
    }
#undef QORA__SQ
    for (r = 0; r < 2u; r++) {
        for (q = 0; q < 4u; q++) {
            uint64_t sum = pair_narrow_q16(a[r] + t, b[q] + t, w - t);
            for (l = 0; l < LANES_Q16; l++) {
                sum += p[r][q][l];
            }
            s[r][q] = sum;
        }
    }
}

/* All pairs of a narrow block, in 2 x 4 tiles (same walk as qora_sqdist_f32). */
static void narrow_block_q16(const int32_t *x, size_t n, size_t w, size_t stride,
                             uint64_t *dist, uint32_t *flags)
{
    size_t i;
    size_t j;
    for (i = 0; i + 1u < n; i += 2u) {
        const int32_t *a[2];
        a[0] = x + i * stride;
        a[1] = x + (i + 1u) * stride;
        for (j = i + 1u; j < n; j += 4u) {
            const int32_t *b[4];
            uint64_t s[2][4];
            size_t q;
            size_t r;
            for (q = 0; q < 4u; q++) {
                b[q] = j + q < n ? x + (j + q) * stride : a[0];
            }
            tile_narrow_q16(a, b, w, s);
            for (r = 0; r < 2u; r++) {
                for (q = 0; q < 4u && j + q < n; q++) {
                    if (j + q > i + r) {
                        add_pair_u64(dist, n, i + r, j + q, s[r][q], flags);
                    }
                }
            }
        }
    }
}
#endif

static uint64_t pair_wide_q16(const int32_t *a, const int32_t *b, size_t w, uint32_t *flags)
{
    uint64_t s = 0;
    size_t t;
    for (t = 0; t < w; t++) {
        uint32_t dd = qora__absdiff_i32(a[t], b[t]);
        s = qora_sat_add_u64(s, (uint64_t)dd * dd, flags);
    }
    return s;
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
#ifndef QORA_SMALL
        if (!wide) {
            narrow_block_q16(x + j0, n, w, stride, dist, flags);
            continue;
        }
#endif
        for (i = 0; i < n; i++) {
            const int32_t *a = x + i * stride + j0;
            for (j = i + 1u; j < n; j++) {
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

/* Finish one float distance: lanes summed in double, then the tail columns;
 * a sum that overflowed in float (or met a non-finite input) is redone wide. */
static double finish_f32(const float *part, const float *a, const float *b, size_t t,
                         size_t w)
{
    double sum = 0.0;
    size_t l;
    for (l = 0; l < LANES; l++) {
        sum += (double)part[l];
    }
    for (; t < w; t++) {
        float diff = a[t] - b[t];
        sum += (double)(diff * diff);
    }
    if (sum - sum != 0.0) {
        sum = pair_f64(a, b, w);
    }
    return sum;
}

/* Two rows against four, LANES partial sums each: every loaded value serves
 * several distances (a block's rows come from L2, so loads are the limit), and
 * the sums have no serial dependency, so the loop vectorises. */
static void tile_f32(const float *const a[2], const float *const b[4], size_t w,
                     double s[2][4])
{
    float p[2][4][LANES];
    size_t t = 0;
    size_t l;
    size_t q;
    size_t r;
    for (r = 0; r < 2u; r++) {
        for (q = 0; q < 4u; q++) {
            for (l = 0; l < LANES; l++) {
                p[r][q][l] = 0.0f;
            }
        }
    }
    for (; t + LANES <= w; t += LANES) {
        for (l = 0; l < LANES; l++) {
            float a0 = a[0][t + l];
            float a1 = a[1][t + l];
            for (q = 0; q < 4u; q++) {
                float bv = b[q][t + l];
                float d0 = a0 - bv;
                float d1 = a1 - bv;
                p[0][q][l] += d0 * d0;
                p[1][q][l] += d1 * d1;
            }
        }
    }
    for (r = 0; r < 2u; r++) {
        for (q = 0; q < 4u; q++) {
            s[r][q] = finish_f32(p[r][q], a[r], b[q], t, w);
        }
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
        /* Rows i and i+1 against rows j..j+3 for j from i+1: the pairs with
         * j <= i+1 for the second row, or past n, are padding and dropped
         * (a short tile borrows row i, whose distance is never used). */
        for (i = 0; i + 1u < n; i += 2u) {
            const float *a[2];
            a[0] = x + i * stride + j0;
            a[1] = x + (i + 1u) * stride + j0;
            for (j = i + 1u; j < n; j += 4u) {
                const float *b[4];
                double s[2][4];
                size_t q;
                size_t r;
                for (q = 0; q < 4u; q++) {
                    b[q] = j + q < n ? x + (j + q) * stride + j0 : a[0];
                }
                tile_f32(a, b, w, s);
                for (r = 0; r < 2u; r++) {
                    for (q = 0; q < 4u && j + q < n; q++) {
                        size_t row = i + r;
                        size_t col = j + q;
                        if (col <= row) {
                            continue;
                        }
                        if (s[r][q] - s[r][q] != 0.0) {
                            return QORA_ERR_NONFINITE;
                        }
                        dist[row * n + col] += s[r][q];
                        dist[col * n + row] += s[r][q];
                    }
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
