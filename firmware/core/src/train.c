/* Local training in Q16.16 (qnode/train.h), bit-exact with host/qora/reference/train.py.
 *
 * docs/fixed-point-training.md defines every rounding point [R1]..[R7]; "On the node" there
 * describes what this file adds: the scratch layout, the visiting order and the epoch loop.
 *
 * How a step is organised (and why the scratch depends on the batch):
 *   1. forward every row of the batch, keeping the hidden activations, and turn the logits
 *      into deltas p - onehot(y) in place;
 *   2. for each layer from the last: first backpropagate the deltas through the weights as
 *      they were before the step (the doc's rule), then update the layer, one output unit at
 *      a time: its fan_in gradient sums over the batch go into an int64 row, then each weight
 *      is stepped at once.
 * So no int64 accumulator per parameter is kept (19,280 bytes for the 64-32-10 MLP); the
 * scratch holds the batch's activations and deltas instead (9,991 bytes for that MLP at
 * batch 32). The sums are exact, so the result does not depend on this order.
 *
 * Scaling and overflow: all products are int32 x int32 -> int64 (|p| <= 2^62), rounded one by
 * one to Q16.16 (|rnd16| <= 2^46) and summed exactly in int64: a layer width is below 2^16
 * (uint16_t sizes) and a batch at most QN_TRAIN_MAX_BATCH, so no sum exceeds 2^62. Results are
 * saturated to int32 once, where the doc says. */
#include "qnode/train.h"

#include "fixmath.h"
#include "qora/q16.h"

#define ONE_Q16 65536

typedef struct {
    uint32_t n_layers;                      /* L = n_sizes - 1 */
    uint32_t fan_in[QN_TRAIN_MAX_LAYERS];
    uint32_t fan_out[QN_TRAIN_MAX_LAYERS];
    size_t w_off[QN_TRAIN_MAX_LAYERS];      /* W of layer k: (fan_out, fan_in) row-major */
    size_t b_off[QN_TRAIN_MAX_LAYERS];
    size_t n_params;
    uint32_t max_fan_in;
    uint32_t hid_width;                     /* sum of the hidden widths sizes[1..L-1] */
    uint32_t delta_width[2];                /* widest delta kept in each of the two buffers */
} net_layout;

typedef struct {
    int64_t *acc;                           /* max_fan_in gradient sums of one output unit */
    int32_t *hid[QN_TRAIN_MAX_LAYERS];      /* hid[k], k >= 1: batch x fan_in[k], layer k's input */
    int32_t *delta[2];                      /* batch x delta_width[*] each */
} net_scratch;

/* The deltas of layer k's outputs live in buffer (L - 1 - k) & 1: the logits / softmax deltas
 * in buffer 0, and each backpropagation writes into the buffer the previous layer's deltas do
 * not use. */
static uint32_t delta_buf(const net_layout *n, uint32_t k)
{
    return (n->n_layers - 1u - k) & 1u;
}

/* Check the shape and fill the layout; 0 on success, -1 on a bad shape (NULL, fewer than 2
 * or more than QN_TRAIN_MAX_LAYERS + 1 sizes, a zero size, more parameters than size_t holds). */
static int layout_init(const qn_shape *s, net_layout *n)
{
    uint64_t off = 0;
    uint32_t k;
    if (s == NULL || s->sizes == NULL || s->n_sizes < 2u
        || s->n_sizes > QN_TRAIN_MAX_LAYERS + 1u) {
        return -1;
    }
    n->n_layers = (uint32_t)s->n_sizes - 1u;
    n->max_fan_in = 0;
    n->hid_width = 0;
    n->delta_width[0] = 0;
    n->delta_width[1] = 0;
    for (k = 0; k < n->n_layers; k++) {
        uint32_t fi = s->sizes[k];
        uint32_t fo = s->sizes[k + 1u];
        uint32_t buf;
        if (fi == 0u || fo == 0u) {
            return -1;
        }
        n->fan_in[k] = fi;
        n->fan_out[k] = fo;
        /* off < 4 * 2^32 here: uint64 cannot overflow; size_t may be 32 bits */
        if (off + (uint64_t)(fi + 1u) * fo > (uint64_t)SIZE_MAX) {
            return -1;
        }
        n->w_off[k] = (size_t)off;
        n->b_off[k] = (size_t)(off + (uint64_t)fi * fo);
        off += (uint64_t)(fi + 1u) * fo;
        if (fi > n->max_fan_in) {
            n->max_fan_in = fi;
        }
        if (k > 0u) {
            n->hid_width += fi;
        }
        buf = delta_buf(n, k);
        if (fo > n->delta_width[buf]) {
            n->delta_width[buf] = fo;
        }
    }
    n->n_params = (size_t)off;
    return 0;
}

/* Scratch bytes for a batch (0 for a batch outside 1..QN_TRAIN_MAX_BATCH): the int64 row, the
 * int32 activations and deltas, and 7 bytes so that any scratch pointer can be 8-aligned. */
static size_t scratch_bytes(const net_layout *n, uint32_t batch)
{
    uint64_t words;
    uint64_t bytes;
    if (batch == 0u || batch > QN_TRAIN_MAX_BATCH) {
        return 0;
    }
    /* each width < 2^18 (at most 4 layers < 2^16), batch <= 2^8: no overflow in uint64 */
    words = (uint64_t)batch * ((uint64_t)n->hid_width + n->delta_width[0] + n->delta_width[1]);
    bytes = 8u * (uint64_t)n->max_fan_in + 4u * words + 7u;
    return bytes > (uint64_t)SIZE_MAX ? 0u : (size_t)bytes;
}

/* Carve the scratch; 0 on success, -1 if it is NULL or smaller than scratch_bytes(). */
static int scratch_init(const net_layout *n, uint32_t batch, void *scratch, size_t size,
                        net_scratch *w)
{
    size_t need = scratch_bytes(n, batch);
    unsigned char *p = (unsigned char *)scratch;
    int32_t *q;
    uint32_t k;
    if (scratch == NULL || need == 0u || size < need) {
        return -1;
    }
    p += (8u - (unsigned)((uintptr_t)p & 7u)) & 7u;
    w->acc = (int64_t *)(void *)p;
    q = (int32_t *)(void *)(w->acc + n->max_fan_in);
    w->hid[0] = NULL;                       /* layer 0 reads the data rows themselves */
    for (k = 1; k < n->n_layers; k++) {
        w->hid[k] = q;
        q += (size_t)batch * n->fan_in[k];
    }
    w->delta[0] = q;
    q += (size_t)batch * n->delta_width[0];
    w->delta[1] = q;
    return 0;
}

/* z_j = sat32(b_j + sum_i rnd16(W_ji h_i)) [R1]; the sum is exact in int64 (fan_in < 2^16
 * terms of at most 2^46). Terms with h_i = 0 are 0 and skipped. */
static void dense(const int32_t *W, const int32_t *bias, const int32_t *h, uint32_t fan_in,
                  uint32_t fan_out, int32_t *z)
{
    uint32_t j;
    uint32_t i;
    for (j = 0; j < fan_out; j++) {
        const int32_t *row = W + (size_t)j * fan_in;
        int64_t acc = 0;
        for (i = 0; i < fan_in; i++) {
            if (h[i] != 0) {
                acc += qn_rnd16((int64_t)row[i] * h[i]);
            }
        }
        z[j] = qn_sat32(acc + bias[j]);
    }
}

/* Forward pass of one row: hidden activations max(z, 0) into hid[k] row b, logits into out. */
static void forward_row(const int32_t *params, const net_layout *n, const net_scratch *w,
                        uint32_t b, const int32_t *x, int32_t *out)
{
    const int32_t *h = x;
    uint32_t k;
    for (k = 0; k < n->n_layers; k++) {
        uint32_t fo = n->fan_out[k];
        int32_t *z = k + 1u == n->n_layers ? out : w->hid[k + 1u] + (size_t)b * fo;
        dense(params + n->w_off[k], params + n->b_off[k], h, n->fan_in[k], fo, z);
        if (k + 1u < n->n_layers) {
            uint32_t j;
            for (j = 0; j < fo; j++) {
                if (z[j] < 0) {
                    z[j] = 0;               /* ReLU */
                }
            }
        }
        h = z;
    }
}

/* w' = sat32(w - mul(lr_q, sat32(div_round(G, B))))   [R6, R7] */
static int32_t sgd_update(int32_t w, int64_t g_sum, uint32_t batch, int32_t lr_q)
{
    int32_t g = qn_sat32(qora_div_round_i64(g_sum, batch));
    int32_t s = qora_q16_mul(lr_q, g, NULL);
    return qn_sat32((int64_t)w - s);
}

/* The row of layer k's input for batch row b: the data row (k = 0) or a hidden activation. */
static const int32_t *input_row(const net_layout *n, const net_scratch *w, uint32_t k,
                                const int32_t *X, const uint32_t *idx, uint32_t b)
{
    if (k == 0u) {
        return X + (size_t)idx[b] * n->fan_in[0];
    }
    return w->hid[k] + (size_t)b * n->fan_in[k];
}

/* One SGD step; arguments already checked (labels < n_classes, scratch large enough). */
static void sgd_step(int32_t *params, const net_layout *n, const net_scratch *w,
                     const int32_t *X, const uint8_t *y, const uint32_t *idx, uint32_t batch,
                     int32_t lr_q)
{
    uint32_t last = n->n_layers - 1u;
    uint32_t n_cls = n->fan_out[last];
    uint32_t b;
    uint32_t k;

    /* 1. forward every row with the weights before the step; delta = p - onehot(y) */
    for (b = 0; b < batch; b++) {
        const int32_t *x = X + (size_t)idx[b] * n->fan_in[0];
        int32_t *d = w->delta[0] + (size_t)b * n_cls;
        forward_row(params, n, w, b, x, d);
        qn_softmax_q16(d, n_cls);
        d[y[idx[b]]] -= ONE_Q16;            /* p <= 2^16: no overflow, |delta| <= 2^16 */
    }

    /* 2. layers from the last: backpropagate, then update */
    for (k = last + 1u; k-- > 0u;) {
        uint32_t fi = n->fan_in[k];
        uint32_t fo = n->fan_out[k];
        int32_t *W = params + n->w_off[k];
        int32_t *bias = params + n->b_off[k];
        const int32_t *d = w->delta[delta_buf(n, k)];
        uint32_t i;
        uint32_t j;

        if (k > 0u) {
            /* delta'_i = sat32(sum_j rnd16(W_ji delta_j)) if h_i > 0, else 0   [R1]
             * into the other buffer, with W not yet stepped */
            int32_t *nd = w->delta[delta_buf(n, k - 1u)];
            for (b = 0; b < batch; b++) {
                const int32_t *h = w->hid[k] + (size_t)b * fi;
                const int32_t *db = d + (size_t)b * fo;
                int32_t *ndb = nd + (size_t)b * fi;
                for (i = 0; i < fi; i++) {
                    int64_t acc = 0;
                    if (h[i] > 0) {
                        for (j = 0; j < fo; j++) {
                            if (db[j] != 0) {
                                acc += qn_rnd16((int64_t)W[(size_t)j * fi + i] * db[j]);
                            }
                        }
                    }
                    ndb[i] = qn_sat32(acc);
                }
            }
        }

        /* G_W[j][i] = sum_b rnd16(delta_j h_i) [R1], G_b[j] = sum_b delta_j; then the step */
        for (j = 0; j < fo; j++) {
            int64_t gb = 0;
            int32_t *row = W + (size_t)j * fi;
            for (i = 0; i < fi; i++) {
                w->acc[i] = 0;
            }
            for (b = 0; b < batch; b++) {
                int32_t dj = d[(size_t)b * fo + j];
                const int32_t *h;
                if (dj == 0) {
                    continue;
                }
                gb += dj;
                h = input_row(n, w, k, X, idx, b);
                for (i = 0; i < fi; i++) {
                    if (h[i] != 0) {
                        w->acc[i] += qn_rnd16((int64_t)dj * h[i]);
                    }
                }
            }
            for (i = 0; i < fi; i++) {
                row[i] = sgd_update(row[i], w->acc[i], batch, lr_q);
            }
            bias[j] = sgd_update(bias[j], gb, batch, lr_q);
        }
    }
}

/* ---- public API ------------------------------------------------------------------------ */

size_t qn_n_params(const qn_shape *s)
{
    net_layout n;
    return layout_init(s, &n) == 0 ? n.n_params : 0u;
}

size_t qn_train_scratch_size(const qn_shape *s, uint32_t max_batch)
{
    net_layout n;
    return layout_init(s, &n) == 0 ? scratch_bytes(&n, max_batch) : 0u;
}

int qn_sgd_step(int32_t *params, const qn_shape *s, const int32_t *X, const uint8_t *y,
                const uint32_t *idx, uint32_t batch, int32_t lr_q, void *scratch,
                size_t scratch_size)
{
    net_layout n;
    net_scratch w;
    uint32_t b;
    if (params == NULL || X == NULL || y == NULL || idx == NULL) {
        return -1;
    }
    if (layout_init(s, &n) != 0 || scratch_init(&n, batch, scratch, scratch_size, &w) != 0) {
        return -1;
    }
    /* labels come from outside (the provisioned shard): check them all before any change */
    for (b = 0; b < batch; b++) {
        if (y[idx[b]] >= n.fan_out[n.n_layers - 1u]) {
            return -1;
        }
    }
    sgd_step(params, &n, &w, X, y, idx, batch, lr_q);
    return 0;
}

/* xorshift32 (Marsaglia 2003, shifts 13, 17, 5): the next state, never 0 from a state != 0. */
static uint32_t xorshift32(uint32_t x)
{
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

void qn_node_order(uint32_t seed, uint32_t *order, uint32_t m)
{
    uint32_t x = seed != 0u ? seed : 0x9E3779B9u;   /* xorshift32 stays at 0 from 0 */
    uint32_t i;
    if (order == NULL) {
        return;
    }
    for (i = 0; i < m; i++) {
        order[i] = i;
    }
    /* Fisher-Yates from the last index down: j uniform-ish in 0..i (the modulo bias is below
     * m / 2^32), one xorshift32 step per swap; index 0 draws nothing. */
    for (i = m; i-- > 1u;) {
        uint32_t j;
        uint32_t t;
        x = xorshift32(x);
        j = x % (i + 1u);
        t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int qn_train(int32_t *params, const qn_shape *s, const int32_t *X, const uint8_t *y, uint32_t m,
             uint32_t epochs, uint32_t batch_size, int32_t lr_q, uint32_t seed,
             uint32_t *order_buf, void *scratch, size_t scratch_size)
{
    net_layout n;
    net_scratch w;
    uint32_t e;
    uint32_t r;
    if (params == NULL || X == NULL || y == NULL || order_buf == NULL) {
        return -1;
    }
    if (layout_init(s, &n) != 0 || batch_size == 0u || batch_size > QN_TRAIN_MAX_BATCH) {
        return -1;
    }
    if (m == 0u) {
        return 0;                           /* no rows: nothing to train, params unchanged */
    }
    /* every batch has min(batch_size, m) rows at most */
    if (scratch_init(&n, batch_size < m ? batch_size : m, scratch, scratch_size, &w) != 0) {
        return -1;
    }
    for (r = 0; r < m; r++) {
        if (y[r] >= n.fan_out[n.n_layers - 1u]) {
            return -1;                      /* all or nothing: checked before the first step */
        }
    }
    for (e = 0; e < epochs; e++) {
        uint32_t start;
        uint32_t rows;
        /* epoch e visits the rows in qn_node_order(seed + e mod 2^32) (doc: "On the node"),
         * in batches order[0:bs], order[bs:2bs], ...; the last may be smaller. start + rows
         * <= m, so the loop cannot wrap even for m near 2^32. */
        qn_node_order(seed + e, order_buf, m);
        for (start = 0; start < m; start += rows) {
            rows = m - start < batch_size ? m - start : batch_size;
            sgd_step(params, &n, &w, X, y, order_buf + start, rows, lr_q);
        }
    }
    return 0;
}

int qn_predict(const int32_t *params, const qn_shape *s, const int32_t *x, void *scratch,
               size_t scratch_size)
{
    net_layout n;
    net_scratch w;
    uint32_t n_cls;
    uint32_t j;
    int best = 0;
    if (params == NULL || x == NULL) {
        return -1;
    }
    if (layout_init(s, &n) != 0 || scratch_init(&n, 1u, scratch, scratch_size, &w) != 0) {
        return -1;
    }
    n_cls = n.fan_out[n.n_layers - 1u];
    forward_row(params, &n, &w, 0u, x, w.delta[0]);
    for (j = 1; j < n_cls; j++) {
        if (w.delta[0][j] > w.delta[0][best]) {
            best = (int)j;                  /* strict: the lowest index wins ties */
        }
    }
    return best;
}
