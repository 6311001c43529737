/* Local training in Q16.16, bit-exact with host/qora/reference/train.py
 * (docs/fixed-point-training.md lists every rounding point [R1]..[R7]).
 * Dense ReLU network with softmax output; flat parameters as qora.models (per layer W
 * (fan_out, fan_in) row-major, then b). No malloc: the caller passes scratch. */
#ifndef QNODE_TRAIN_H
#define QNODE_TRAIN_H
#include <stddef.h>
#include <stdint.h>

#define QN_TRAIN_MAX_LAYERS 4          /* sizes[0..n_sizes-1], n_sizes <= QN_TRAIN_MAX_LAYERS + 1 */
#define QN_TRAIN_MAX_BATCH 256

typedef struct {
    const uint16_t *sizes;              /* (n_features, hidden..., n_classes) */
    uint8_t n_sizes;
} qn_shape;

/* Parameters of the shape; 0 for a bad shape (NULL, n_sizes outside 2..QN_TRAIN_MAX_LAYERS + 1,
 * a zero size). */
size_t qn_n_params(const qn_shape *s);
/* Scratch bytes for one SGD step with batches of up to max_batch rows (0 for a bad shape or
 * max_batch outside 1..QN_TRAIN_MAX_BATCH): 8 * max fan_in + 4 * max_batch * (hidden widths +
 * two delta widths) + 7, e.g. 9,991 for (64, 32, 10) at 32 rows. Any alignment will do. */
size_t qn_train_scratch_size(const qn_shape *s, uint32_t max_batch);

/* One SGD step on rows X[idx[0..batch-1]] (reference sgd_step_q16). X is n_rows x n_features
 * Q16.16, y the labels; idx[b] < n_rows is the caller's duty. Returns 0, or -1 on bad arguments
 * / too little scratch / a label >= n_classes, and then params are unchanged. */
int qn_sgd_step(int32_t *params, const qn_shape *s, const int32_t *X, const uint8_t *y,
                const uint32_t *idx, uint32_t batch, int32_t lr_q, void *scratch, size_t scratch_size);

/* The visiting order nodes use (numpy's permutation is not available on a board):
 * Fisher-Yates driven by xorshift32 seeded with seed (0 replaced by 0x9E3779B9), documented
 * in docs/fixed-point-training.md and mirrored by qora.reference.train.node_order. */
void qn_node_order(uint32_t seed, uint32_t *order, uint32_t m);

/* epochs x (order, then batches of batch_size) with qn_sgd_step; epoch e (0-based) visits the
 * rows in qn_node_order(seed + e mod 2^32, m) (reference train_node_q16). order_buf holds m
 * entries; scratch as qn_train_scratch_size(s, min(batch_size, m)). Every argument and label is
 * checked before the first step: -1 leaves params unchanged. m = 0 or epochs = 0 returns 0. */
int qn_train(int32_t *params, const qn_shape *s, const int32_t *X, const uint8_t *y, uint32_t m,
             uint32_t epochs, uint32_t batch_size, int32_t lr_q, uint32_t seed,
             uint32_t *order_buf, void *scratch, size_t scratch_size);

/* argmax of the logits (lowest index on ties), or -1 on bad arguments; scratch as for a batch
 * of 1. */
int qn_predict(const int32_t *params, const qn_shape *s, const int32_t *x, void *scratch,
               size_t scratch_size);

#endif
