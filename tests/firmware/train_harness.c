/* Test driver for firmware/core/src/train.c (qnode/train.h), run by tests/firmware/test_train.py
 * under AddressSanitizer + UBSan. Host-only code: it may allocate, the firmware may not.
 *
 * Protocol on stdin / stdout, all words 32-bit little-endian (the host's order; x86-64):
 *   request:  cmd, n_arrays, then per array: len, len words
 *   response: len, len words (int32)
 * Every array is copied into a malloc'd block of exactly its size, so any read past the end
 * of the data, labels, parameters or scratch is an ASan error. Scratch is filled with 0xA5
 * first (the code must not rely on zeroed scratch) and can be offset to test alignment.
 *
 *   SIZES   [sizes] [max_batch]                                  -> n_params, scratch_size
 *   SGD     [sizes] [X] [y] [params] [idx] [lr_q, scratch_bytes, misalign]
 *                                                                -> status, params...
 *   ORDER   [seed, m]                                            -> order...
 *   TRAIN   [sizes] [X] [y] [params] [m, epochs, batch, lr_q, seed, scratch_bytes, misalign]
 *                                                                -> status, params...
 *   PREDICT [sizes] [X] [params] [n_rows, scratch_bytes, misalign] -> label per row (or -1)
 *   SELFTEST []                                                  -> number of failed checks
 *   EXP     [x...]                     -> qn_exp_q30(x) per x (internal, fixmath.h)
 *   SOFTMAX [n] [z...]                 -> qn_softmax_q16 of each row of n logits
 * A request whose framing is wrong ends the process with status 2. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixmath.h"        /* firmware/core/src: the internal exp / softmax, tested directly */
#include "qnode/train.h"

enum {
    CMD_SIZES = 1, CMD_SGD, CMD_ORDER, CMD_TRAIN, CMD_PREDICT, CMD_SELFTEST, CMD_EXP, CMD_SOFTMAX
};

#define MAX_ARRAYS 8

typedef struct {
    uint32_t len;
    uint32_t *w;
} array;

static void die(const char *msg)
{
    fprintf(stderr, "train_harness: %s\n", msg);
    exit(2);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

static int read_word(uint32_t *w)
{
    unsigned char b[4];
    size_t got = fread(b, 1, 4, stdin);
    if (got == 0 && feof(stdin)) {
        return 0;
    }
    if (got != 4) {
        die("short read");
    }
    *w = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static uint32_t need_word(void)
{
    uint32_t w;
    if (!read_word(&w)) {
        die("unexpected end of input");
    }
    return w;
}

static void reply(const int32_t *v, uint32_t n)
{
    uint32_t i;
    uint32_t words[1];
    words[0] = n;
    fwrite(words, 4, 1, stdout);
    for (i = 0; i < n; i++) {
        fwrite(&v[i], 4, 1, stdout);
    }
    fflush(stdout);
}

static int32_t *as_i32(const array *a)
{
    int32_t *p = xmalloc((size_t)a->len * 4);
    memcpy(p, a->w, (size_t)a->len * 4);
    return p;
}

static uint8_t *as_u8(const array *a)
{
    uint8_t *p = xmalloc(a->len);
    uint32_t i;
    for (i = 0; i < a->len; i++) {
        p[i] = (uint8_t)a->w[i];
    }
    return p;
}

static void shape_of(const array *a, qn_shape *s, uint16_t **sizes)
{
    uint32_t i;
    *sizes = xmalloc((size_t)a->len * sizeof(uint16_t));
    for (i = 0; i < a->len; i++) {
        (*sizes)[i] = (uint16_t)a->w[i];
    }
    s->sizes = *sizes;
    s->n_sizes = (uint8_t)a->len;
}

/* scratch of `bytes` usable bytes starting `misalign` bytes into a fresh block */
static unsigned char *scratch_block(uint32_t bytes, uint32_t misalign, unsigned char **base)
{
    *base = xmalloc((size_t)bytes + misalign);
    memset(*base, 0xA5, (size_t)bytes + misalign);
    return *base + misalign;
}

static void reply_status_params(int status, const int32_t *params, uint32_t n)
{
    int32_t *out = xmalloc(((size_t)n + 1) * 4);
    out[0] = status;
    memcpy(out + 1, params, (size_t)n * 4);
    reply(out, n + 1);
    free(out);
}

/* ---- self test: arguments that cannot travel through the protocol (NULLs) ---------------- */

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "selftest: %s\n", what);
        failures++;
    }
}

static int selftest(void)
{
    static const uint16_t sz[3] = {4, 3, 2};
    static const uint16_t zero_sz[3] = {4, 0, 2};
    qn_shape s = {sz, 3};
    qn_shape bad = {sz, 1};
    qn_shape nul = {NULL, 3};
    qn_shape z = {zero_sz, 3};
    int32_t params[(4 + 1) * 3 + (3 + 1) * 2];
    int32_t before[sizeof params / sizeof params[0]];
    int32_t X[2 * 4] = {65536, 0, -65536, 100, 3, 4, 5, 6};
    uint8_t y[2] = {0, 1};
    uint32_t idx[2] = {1, 0};
    uint32_t order[4] = {7, 7, 7, 7};
    int64_t scratch64[64];
    void *sc = scratch64;
    size_t need = qn_train_scratch_size(&s, 2);
    size_t i;
    failures = 0;
    for (i = 0; i < sizeof params / sizeof params[0]; i++) {
        params[i] = (int32_t)(i * 1000u);
    }
    memcpy(before, params, sizeof params);
    check(qn_n_params(&s) == 23, "n_params of (4, 3, 2)");
    check(qn_n_params(NULL) == 0 && qn_n_params(&bad) == 0 && qn_n_params(&nul) == 0
              && qn_n_params(&z) == 0, "n_params of a bad shape is 0");
    check(need > 0 && need <= sizeof scratch64, "scratch size");
    check(qn_train_scratch_size(&s, 0) == 0
              && qn_train_scratch_size(&s, QN_TRAIN_MAX_BATCH + 1) == 0
              && qn_train_scratch_size(NULL, 1) == 0, "scratch size of bad arguments is 0");
    check(qn_sgd_step(NULL, &s, X, y, idx, 2, 6554, scratch64, need) == -1, "sgd NULL params");
    check(qn_sgd_step(params, NULL, X, y, idx, 2, 6554, scratch64, need) == -1, "sgd NULL shape");
    check(qn_sgd_step(params, &nul, X, y, idx, 2, 6554, scratch64, need) == -1, "sgd NULL sizes");
    check(qn_sgd_step(params, &s, NULL, y, idx, 2, 6554, scratch64, need) == -1, "sgd NULL X");
    check(qn_sgd_step(params, &s, X, NULL, idx, 2, 6554, scratch64, need) == -1, "sgd NULL y");
    check(qn_sgd_step(params, &s, X, y, NULL, 2, 6554, scratch64, need) == -1, "sgd NULL idx");
    check(qn_sgd_step(params, &s, X, y, idx, 2, 6554, NULL, need) == -1, "sgd NULL scratch");
    check(memcmp(params, before, sizeof params) == 0, "sgd failures leave params alone");
    check(qn_sgd_step(params, &s, X, y, idx, 2, 6554, scratch64, need) == 0, "sgd ok");
    check(memcmp(params, before, sizeof params) != 0, "sgd changes params");
    memcpy(before, params, sizeof params);
    /* arguments: params, shape, X, y, m, epochs, batch_size, lr_q, seed, order, scratch, size */
    check(qn_train(NULL, &s, X, y, 2, 1, 2, 6554, 1, order, sc, need) == -1, "train NULL params");
    check(qn_train(params, &s, NULL, y, 2, 1, 2, 6554, 1, order, sc, need) == -1, "train NULL X");
    check(qn_train(params, &s, X, NULL, 2, 1, 2, 6554, 1, order, sc, need) == -1, "train NULL y");
    check(qn_train(params, &s, X, y, 2, 1, 2, 6554, 1, NULL, sc, need) == -1, "train NULL order");
    check(qn_train(params, &s, X, y, 2, 1, 2, 6554, 1, order, NULL, need) == -1,
          "train NULL scratch");
    check(qn_train(params, &bad, X, y, 2, 1, 2, 6554, 1, order, sc, need) == -1,
          "train bad shape");
    check(memcmp(params, before, sizeof params) == 0, "train failures leave params alone");
    check(qn_train(params, &s, X, y, 0, 3, 2, 6554, 1, order, NULL, 0) == 0,
          "train m = 0 is a no-op");
    check(qn_train(params, &s, X, y, 2, 0, 2, 6554, 1, order, sc, need) == 0, "train 0 epochs");
    check(memcmp(params, before, sizeof params) == 0, "no rows or no epochs: params unchanged");
    check(qn_predict(NULL, &s, X, scratch64, need) == -1, "predict NULL params");
    check(qn_predict(params, &s, NULL, scratch64, need) == -1, "predict NULL x");
    check(qn_predict(params, &s, X, NULL, need) == -1, "predict NULL scratch");
    check(qn_predict(params, &s, X, scratch64, qn_train_scratch_size(&s, 1) - 1) == -1,
          "predict small scratch");
    check(qn_predict(params, &s, X, scratch64, qn_train_scratch_size(&s, 1)) >= 0, "predict ok");
    qn_node_order(5, NULL, 4);                  /* must not crash */
    qn_node_order(5, order, 0);
    check(order[0] == 7, "order of 0 rows writes nothing");
    qn_node_order(5, order, 1);
    check(order[0] == 0 && order[1] == 7, "order of 1 row is [0]");
    return failures;
}

/* ---- main loop ------------------------------------------------------------------------- */

int main(void)
{
    uint32_t cmd;
    while (read_word(&cmd)) {
        array a[MAX_ARRAYS];
        uint32_t n = need_word();
        uint32_t k;
        qn_shape s;
        uint16_t *sizes = NULL;
        if (n > MAX_ARRAYS) {
            die("too many arrays");
        }
        for (k = 0; k < n; k++) {
            uint32_t i;
            a[k].len = need_word();
            a[k].w = xmalloc((size_t)a[k].len * 4);
            for (i = 0; i < a[k].len; i++) {
                a[k].w[i] = need_word();
            }
        }
        switch (cmd) {
        case CMD_SIZES: {
            int32_t out[2];
            shape_of(&a[0], &s, &sizes);
            out[0] = (int32_t)qn_n_params(&s);
            out[1] = (int32_t)qn_train_scratch_size(&s, a[1].w[0]);
            reply(out, 2);
            break;
        }
        case CMD_SGD: {
            int32_t *X = as_i32(&a[1]);
            uint8_t *y = as_u8(&a[2]);
            int32_t *params = as_i32(&a[3]);
            uint32_t *idx = xmalloc((size_t)a[4].len * 4);
            unsigned char *base;
            unsigned char *scratch = scratch_block(a[5].w[1], a[5].w[2], &base);
            int st;
            memcpy(idx, a[4].w, (size_t)a[4].len * 4);
            shape_of(&a[0], &s, &sizes);
            st = qn_sgd_step(params, &s, X, y, idx, a[4].len, (int32_t)a[5].w[0], scratch,
                             a[5].w[1]);
            reply_status_params(st, params, a[3].len);
            free(X), free(y), free(params), free(idx), free(base);
            break;
        }
        case CMD_ORDER: {
            uint32_t m = a[0].w[1];
            uint32_t *order = xmalloc((size_t)m * 4);
            qn_node_order(a[0].w[0], order, m);
            reply((const int32_t *)order, m);
            free(order);
            break;
        }
        case CMD_TRAIN: {
            int32_t *X = as_i32(&a[1]);
            uint8_t *y = as_u8(&a[2]);
            int32_t *params = as_i32(&a[3]);
            const uint32_t *v = a[4].w;
            uint32_t *order = xmalloc((size_t)v[0] * 4);
            unsigned char *base;
            unsigned char *scratch = scratch_block(v[5], v[6], &base);
            int st;
            shape_of(&a[0], &s, &sizes);
            st = qn_train(params, &s, X, y, v[0], v[1], v[2], (int32_t)v[3], v[4], order, scratch,
                          v[5]);
            reply_status_params(st, params, a[3].len);
            free(X), free(y), free(params), free(order), free(base);
            break;
        }
        case CMD_PREDICT: {
            int32_t *X = as_i32(&a[1]);
            int32_t *params = as_i32(&a[2]);
            uint32_t rows = a[3].w[0];
            uint32_t nf = a[0].len ? a[0].w[0] : 0;
            int32_t *out = xmalloc((size_t)rows * 4);
            unsigned char *base;
            unsigned char *scratch = scratch_block(a[3].w[1], a[3].w[2], &base);
            uint32_t r;
            shape_of(&a[0], &s, &sizes);
            for (r = 0; r < rows; r++) {
                out[r] = qn_predict(params, &s, X + (size_t)r * nf, scratch, a[3].w[1]);
            }
            reply(out, rows);
            free(X), free(params), free(out), free(base);
            break;
        }
        case CMD_SELFTEST: {
            int32_t out[1];
            out[0] = selftest();
            reply(out, 1);
            break;
        }
        case CMD_EXP: {
            int32_t *out = xmalloc((size_t)a[0].len * 4);
            uint32_t i;
            for (i = 0; i < a[0].len; i++) {
                out[i] = (int32_t)qn_exp_q30((int32_t)a[0].w[i]);
            }
            reply(out, a[0].len);
            free(out);
            break;
        }
        case CMD_SOFTMAX: {
            uint32_t width = a[0].w[0];
            int32_t *z = as_i32(&a[1]);
            uint32_t r;
            for (r = 0; width != 0 && r < a[1].len / width; r++) {
                qn_softmax_q16(z + (size_t)r * width, width);
            }
            reply(z, a[1].len);
            free(z);
            break;
        }
        default:
            die("unknown command");
        }
        free(sizes);
        for (k = 0; k < n; k++) {
            free(a[k].w);
        }
    }
    return 0;
}
