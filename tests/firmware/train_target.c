/* qn_train / qn_node_order / qn_predict on a bare-metal target (QEMU Cortex-M4 and RV32 through
 * shared_c/tests/targets), against vectors from the Python reference. tests/firmware/test_train.py
 * writes train_vectors.h (the data, the initial and expected parameters) and builds this file.
 * Prints one line per check; exits 0 when all pass, 1 otherwise. */
#include <stddef.h>
#include <stdint.h>

#include "port.h"
#include "qnode/train.h"
#include "train_vectors.h"

#define SCRATCH_CAP 16384u

static uint64_t scratch[SCRATCH_CAP / 8u];     /* uint64_t: 8-aligned, though train.c aligns */
static int32_t params[N_PARAMS];
static uint32_t order[M_ROWS > ORDER_M ? M_ROWS : ORDER_M];

static void put_u32(uint32_t v)
{
    char buf[11];
    size_t i = sizeof buf - 1u;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    port_write(&buf[i]);
}

static int report(const char *what, uint32_t bad, uint32_t first)
{
    port_write(what);
    if (bad == 0u) {
        port_write(" ok\n");
        return 0;
    }
    port_write(" FAIL: ");
    put_u32(bad);
    port_write(" differ, first at ");
    put_u32(first);
    port_write("\n");
    return 1;
}

int main(void)
{
    static const uint16_t sizes[N_SIZES] = SIZES;
    qn_shape s;
    size_t need;
    uint32_t i;
    uint32_t bad = 0;
    uint32_t first = 0;
    int fails = 0;
    int st;
    s.sizes = sizes;
    s.n_sizes = N_SIZES;

    qn_node_order(ORDER_SEED, order, ORDER_M);
    for (i = 0; i < ORDER_M; i++) {
        if (order[i] != ORDER_WANT[i] && bad++ == 0u) {
            first = i;
        }
    }
    fails += report("node_order", bad, first);

    need = qn_train_scratch_size(&s, BATCH);
    if (need == 0u || need > SCRATCH_CAP || qn_n_params(&s) != N_PARAMS) {
        port_write("sizes FAIL\n");
        port_exit(1);
    }
    for (i = 0; i < N_PARAMS; i++) {
        params[i] = P0[i];
    }
    st = qn_train(params, &s, X, Y, M_ROWS, EPOCHS, BATCH, LR_Q, SEED, order, scratch, need);
    bad = st != 0 ? 1u : 0u;
    first = 0;
    for (i = 0; i < N_PARAMS; i++) {
        if (params[i] != WANT[i] && bad++ == 0u) {
            first = i;
        }
    }
    fails += report("train", bad, first);

    bad = 0;
    for (i = 0; i < M_ROWS; i++) {
        int label = qn_predict(params, &s, X + (size_t)i * SIZE_IN, scratch, need);
        if (label != (int)PRED_WANT[i] && bad++ == 0u) {
            first = i;
        }
    }
    fails += report("predict", bad, first);
    return fails != 0 ? 1 : 0;
}
