/*
 * Qora Edge core — C unit tests (host). Run from pytest (tests/core/) under
 * gcc and clang, and again under AddressSanitizer + UBSan.
 *
 * The golden vectors (shared_c/tests/vectors/) pin the Q16.16 results bit for
 * bit; this file checks what vectors cannot: argument errors of every entry
 * point, the float32 path against a plain reference, the pruned networks
 * against a full sort, and that blocking and strides do not change results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qora/qora.h"

static int failures;
static int checks;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        checks++;                                                                         \
        if (!(cond)) {                                                                    \
            failures++;                                                                   \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                        \
        }                                                                                 \
    } while (0)

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static uint64_t scratch_mem[1 << 16]; /* 512 KiB, 8-byte aligned */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a;
    int32_t y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_f32(const void *a, const void *b)
{
    float x = *(const float *)a;
    float y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Reference Q16.16 trimmed mean of one column: sort, sum the middle, round. */
static int32_t ref_trim_q16(const int32_t *col, size_t n, size_t k)
{
    int32_t tmp[512];
    int64_t s = 0;
    size_t i;
    memcpy(tmp, col, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_i32);
    for (i = k; i < n - k; i++) {
        s += tmp[i];
    }
    return (int32_t)qora_div_round_i64(s, n - 2 * k);
}

static void test_q16_scalars(void)
{
    uint32_t flags = 0;
    qora_q16_t q = 0;
    CHECK(qora_q16_from_f32(1.5f, &q, &flags) == QORA_OK && q == 98304);
    CHECK(qora_q16_from_f32(-1.5f, &q, &flags) == QORA_OK && q == -98304);
    /* ties away from zero: 2^-17 is exactly half an LSB */
    CHECK(qora_q16_from_f32(0x1p-17f, &q, &flags) == QORA_OK && q == 1);
    CHECK(qora_q16_from_f32(-0x1p-17f, &q, &flags) == QORA_OK && q == -1);
    CHECK(qora_q16_from_f32(0x1p-18f, &q, &flags) == QORA_OK && q == 0);
    CHECK(flags == 0u);
    CHECK(qora_q16_from_f32(40000.0f, &q, &flags) == QORA_OK && q == INT32_MAX);
    CHECK(flags == QORA_FLAG_SATURATED);
    flags = 0;
    CHECK(qora_q16_from_f32(-32768.0f, &q, &flags) == QORA_OK && q == INT32_MIN && flags == 0u);
    q = 7;
    CHECK(qora_q16_from_f32(NAN, &q, &flags) == QORA_ERR_NONFINITE && q == 7);
    CHECK(qora_q16_from_f32(INFINITY, &q, &flags) == QORA_ERR_NONFINITE);
    CHECK(qora_q16_from_f32(1.0f, NULL, &flags) == QORA_ERR_NULL);
    CHECK(qora_q16_to_f32(98304) == 1.5f);
    CHECK(qora_q16_to_f32(INT32_MIN) == -32768.0f);
    CHECK(qora_q16_to_f32(-1) == -0x1p-16f);
    flags = 0;
    CHECK(qora_q16_mul(QORA_Q16_ONE * 3, -QORA_Q16_ONE / 2, &flags) == -QORA_Q16_ONE * 3 / 2);
    CHECK(qora_q16_mul(INT32_MAX, INT32_MAX, &flags) == INT32_MAX && flags != 0u);
    flags = 0;
    CHECK(qora_q16_div(QORA_Q16_ONE, 3 * QORA_Q16_ONE, &flags) == 21845);
    CHECK(qora_q16_div(-QORA_Q16_ONE, 3 * QORA_Q16_ONE, &flags) == -21845);
    CHECK(qora_q16_div(2, 0, &flags) == INT32_MAX && flags != 0u);
    CHECK(qora_q16_div(0, 0, NULL) == 0);
    CHECK(qora_q16_sqrt(4 * QORA_Q16_ONE, NULL) == 2 * QORA_Q16_ONE);
    CHECK(qora_isqrt64(UINT64_MAX) == UINT32_MAX);
    CHECK(qora_sqrt_round_u64(UINT64_MAX) == UINT32_MAX);
    CHECK(qora_sqrt_round_u64(2) == 1u && qora_sqrt_round_u64(3) == 2u);
    CHECK(qora_div_round_i64(-5, 2) == -3 && qora_div_round_i64(5, 2) == 3);
    CHECK(qora_div_round_i64(-4, 3) == -1 && qora_div_round_i64(INT64_MIN, 1) == INT64_MIN);
    CHECK(qora_sat_add_i64(INT64_MAX, 1, NULL) == INT64_MAX);
    CHECK(qora_sat_add_u64(UINT64_MAX, 1, NULL) == UINT64_MAX);
    CHECK(qora_status_str((qora_status)-99) != NULL);
    CHECK(strcmp(qora_status_str(QORA_ERR_F), "krum needs n >= 2f + 3") == 0);
}

static void test_errors(void)
{
    int32_t x[12] = {0};
    int32_t out[4];
    float xf[12] = {0};
    float outf[4];
    uint64_t sc[8];
    uint32_t sel[8];
    size_t big = sizeof scratch_mem;
    void *s = scratch_mem;
    CHECK(qora_trimmed_mean_q16(NULL, 3, 4, 4, 1, out, NULL, s, big, NULL) == QORA_ERR_NULL);
    CHECK(qora_trimmed_mean_q16(x, 0, 4, 4, 0, out, NULL, s, big, NULL) == QORA_ERR_EMPTY);
    CHECK(qora_trimmed_mean_q16(x, 3, 0, 4, 0, out, NULL, s, big, NULL) == QORA_ERR_EMPTY);
    CHECK(qora_trimmed_mean_q16(x, 3, 4, 3, 0, out, NULL, s, big, NULL) == QORA_ERR_STRIDE);
    CHECK(qora_trimmed_mean_q16(x, 3, 4, 4, 2, out, NULL, s, big, NULL) == QORA_ERR_K);
    CHECK(qora_trimmed_mean_q16(x, 3, 4, 4, SIZE_MAX, out, NULL, s, big, NULL) == QORA_ERR_K);
    CHECK(qora_trimmed_mean_q16(x, 3, 4, 4, 1, out, NULL, s, 8, NULL) == QORA_ERR_SCRATCH);
    CHECK(qora_trimmed_mean_q16(x, 3, 4, 4, 1, NULL, NULL, s, big, NULL) == QORA_ERR_NULL);
    CHECK(qora_median_q16(x, 70000, 1, 1, out, NULL, s, big, NULL) == QORA_ERR_N);
    CHECK(qora_fedavg_q16(x, 3, 4, 4, (const uint32_t[]){0, 0, 0}, out, NULL, s, big, NULL) ==
          QORA_ERR_WEIGHTS);
    CHECK(qora_fedavg_f32(xf, 3, 4, 4, (const float[]){1, -1, 1}, outf, NULL, s, big, NULL) ==
          QORA_ERR_WEIGHTS);
    CHECK(qora_fedavg_f32(xf, 3, 4, 4, (const float[]){1, NAN, 1}, outf, NULL, s, big, NULL) ==
          QORA_ERR_NONFINITE);
    CHECK(qora_krum_q16(x, 4, 3, 3, 1, out, sc, sel, NULL, s, big, NULL) == QORA_ERR_F);
    CHECK(qora_multi_krum_q16(x, 5, 2, 2, 1, 0, out, sc, sel, NULL, s, big, NULL) == QORA_ERR_M);
    CHECK(qora_multi_krum_q16(x, 5, 2, 2, 1, 2, out, sc, sel, NULL, s, big, NULL) == QORA_ERR_M);
    CHECK(qora_multi_krum_q16(x, 5, 2, 2, 1, 1, out, sc, sel, NULL, s, 16, NULL) ==
          QORA_ERR_SCRATCH);
    xf[5] = NAN;
    CHECK(qora_trimmed_mean_f32(xf, 3, 4, 4, 1, outf, NULL, s, big, NULL) == QORA_ERR_NONFINITE);
    CHECK(qora_median_f32(xf, 3, 4, 4, outf, NULL, s, big, NULL) == QORA_ERR_NONFINITE);
    CHECK(qora_fedavg_f32(xf, 3, 4, 4, NULL, outf, NULL, s, big, NULL) == QORA_ERR_NONFINITE);
    CHECK(qora_krum_f32(xf, 3, 4, 4, 0, outf, NULL, NULL, NULL, s, big, NULL) ==
          QORA_ERR_NONFINITE);
    xf[5] = -INFINITY;
    CHECK(qora_krum_f32(xf, 3, 4, 4, 0, outf, NULL, NULL, NULL, s, big, NULL) ==
          QORA_ERR_NONFINITE);
}

/* Pruned networks give exactly the sorted-reference trimmed mean / median,
 * for every n up to 70 and every k, across block edges and with a stride. */
static void test_networks_match_sort(void)
{
    static int32_t x[70 * 150];
    static int32_t out[150];
    int32_t col[70];
    size_t n;
    for (n = 1; n <= 70; n++) {
        size_t d = 131; /* two full blocks of 64 and a tail */
        size_t stride = 150;
        size_t k;
        size_t i;
        size_t j;
        for (i = 0; i < n * stride; i++) {
            /* few distinct values: many ties */
            x[i] = (int32_t)(rnd() % 7u) - 3;
            if (rnd() % 5u == 0u) {
                x[i] = (int32_t)rnd();
            }
        }
        for (k = 0; 2 * k < n; k++) {
            int ok = 1;
            CHECK(qora_trimmed_mean_q16(x, n, d, stride, k, out, NULL, scratch_mem,
                                        sizeof scratch_mem, NULL) == QORA_OK);
            for (j = 0; j < d; j++) {
                for (i = 0; i < n; i++) {
                    col[i] = x[i * stride + j];
                }
                ok &= out[j] == ref_trim_q16(col, n, k);
            }
            CHECK(ok);
        }
    }
}

static void test_float_paths(void)
{
    static float x[33 * 200];
    static float out[200];
    float col[33];
    size_t n = 33;
    size_t d = 200;
    size_t i;
    size_t j;
    int ok = 1;
    double dev[33] = {0};
    for (i = 0; i < n * d; i++) {
        x[i] = (float)((int32_t)(rnd() >> 8) - (1 << 23)) / 1024.0f;
    }
    CHECK(qora_median_f32(x, n, d, d, out, dev, scratch_mem, sizeof scratch_mem, NULL) ==
          QORA_OK);
    for (j = 0; j < d; j++) {
        for (i = 0; i < n; i++) {
            col[i] = x[i * d + j];
        }
        qsort(col, n, sizeof *col, cmp_f32);
        ok &= out[j] == col[n / 2];
    }
    CHECK(ok);
    /* deviation of row 0 against a direct double computation */
    {
        double s = 0.0;
        float dv[33];
        for (j = 0; j < d; j++) {
            double df = (double)x[j] - (double)out[j];
            s += df * df;
        }
        CHECK(fabs(dev[0] - s) <= 1e-9 * s);
        qora_deviation_finish_f32(dev, n, dv);
        CHECK(fabs((double)dv[0] - sqrt(s)) <= 1e-6 * sqrt(s));
    }
    /* values near FLT_MAX: Krum distances are redone in double, not Inf */
    {
        float big[5 * 2] = {3e38f, -3e38f, -3e38f, 3e38f, 1, 2, 3, 4, 5, 6};
        float o[2];
        double scores[5];
        uint32_t sel[1];
        CHECK(qora_krum_f32(big, 5, 2, 2, 1, o, scores, sel, NULL, scratch_mem,
                            sizeof scratch_mem, NULL) == QORA_OK);
        CHECK(sel[0] == 3u && scores[0] > 1e77 && scores[0] < 1e78);
    }
}

/* Krum: ties go to the lower index; the Q16 distances are exact. */
static void test_krum(void)
{
    int32_t x[5] = {0, 65536, 2 * 65536, 3 * 65536, 4 * 65536};
    int32_t out[1];
    uint64_t scores[5];
    uint32_t sel[3];
    uint64_t dev[5] = {0};
    CHECK(qora_krum_q16(x, 5, 1, 1, 1, out, scores, sel, dev, scratch_mem, sizeof scratch_mem,
                        NULL) == QORA_OK);
    CHECK(out[0] == 65536 && sel[0] == 1u);
    CHECK(scores[1] == ((uint64_t)2 << 32)); /* 1^2 + 1^2 in Q32 units */
    CHECK(dev[4] == ((uint64_t)9 << 32));
    CHECK(qora_multi_krum_q16(x, 5, 1, 1, 0, 2, out, scores, sel, NULL, scratch_mem,
                              sizeof scratch_mem, NULL) == QORA_OK);
    CHECK(sel[0] == 1u && sel[1] == 2u && out[0] == 98304);
    {
        /* full-range rows saturate distances; result still defined */
        int32_t w[5 * 2] = {INT32_MIN, INT32_MIN, INT32_MAX, INT32_MAX, 0, 0, 1, 1, 2, 2};
        int32_t o[2];
        uint32_t flags = 0;
        CHECK(qora_krum_q16(w, 5, 2, 2, 1, o, scores, sel, NULL, scratch_mem,
                            sizeof scratch_mem, &flags) == QORA_OK);
        CHECK(sel[0] == 3u);
        CHECK((flags & QORA_FLAG_SATURATED) != 0u);
    }
}

/* Splitting columns (as threads do) changes nothing in Q16.16. */
static void test_blocking_invariance(void)
{
    static int32_t x[12 * 3000];
    static int32_t a[3000];
    static int32_t b[3000];
    uint64_t da[12] = {0};
    uint64_t db[12] = {0};
    uint64_t dist_a[144] = {0};
    uint64_t dist_b[144] = {0};
    size_t i;
    for (i = 0; i < 12 * 3000; i++) {
        x[i] = (int32_t)rnd();
    }
    CHECK(qora_trimmed_mean_q16(x, 12, 3000, 3000, 3, a, da, scratch_mem, sizeof scratch_mem,
                                NULL) == QORA_OK);
    CHECK(qora_trimmed_mean_q16(x, 12, 1000, 3000, 3, b, db, scratch_mem, sizeof scratch_mem,
                                NULL) == QORA_OK);
    CHECK(qora_trimmed_mean_q16(x + 1000, 12, 2000, 3000, 3, b + 1000, db, scratch_mem,
                                sizeof scratch_mem, NULL) == QORA_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(da, db, sizeof da) == 0);
    CHECK(qora_sqdist_q16(x, 12, 3000, 3000, dist_a, NULL) == QORA_OK);
    CHECK(qora_sqdist_q16(x, 12, 1700, 3000, dist_b, NULL) == QORA_OK);
    CHECK(qora_sqdist_q16(x + 1700, 12, 1300, 3000, dist_b, NULL) == QORA_OK);
    CHECK(memcmp(dist_a, dist_b, sizeof dist_a) == 0);
}

int main(void)
{
    test_q16_scalars();
    test_errors();
    test_networks_match_sort();
    test_float_paths();
    test_krum();
    test_blocking_invariance();
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
