/* One operation of the node, bare-metal under QEMU (shared_c/tests/targets), for
 * firmware/tools/measure.py: a mesh aggregation (qora_trimmed_mean_q16 / qora_multi_krum_q16,
 * called as node.c calls them), SHA-256 or HMAC-SHA256 of one message (qn_sha256 /
 * qn_hmac_sha256). measure.py writes measure_vectors.h (the operation, the inputs and the
 * host reference's result), builds this file and counts the instructions executed inside the
 * one call below. Prints "<op> ok" and exits 0 when the result equals the reference. */
#include <stddef.h>
#include <stdint.h>

#include "measure_vectors.h"
#include "port.h"
#include "qnode/hash.h"
#include "qora/aggregate.h"

#if defined(OP_TRIMMED_MEAN) || defined(OP_KRUM)
static qora_q16_t rows[N_ROWS * D_COLS];  /* the node's g_mesh: updates in RAM */
static qora_q16_t out[D_COLS];
static uint64_t scratch[4096];            /* the node's g_scratch (32 KiB) */

int main(void)
{
    uint32_t flags = 0;
    uint32_t i;
    uint32_t bad = 0;
    qora_status st;
    for (i = 0; i < N_ROWS * D_COLS; i++) {
        rows[i] = X[i];
    }
#ifdef OP_TRIMMED_MEAN
    st = qora_trimmed_mean_q16(rows, N_ROWS, D_COLS, D_COLS, K_OR_F, out, NULL, scratch,
                               sizeof scratch, &flags);
    port_write("trimmed_mean");
#else
    st = qora_multi_krum_q16(rows, N_ROWS, D_COLS, D_COLS, K_OR_F, 1, out, NULL, NULL, NULL,
                             scratch, sizeof scratch, &flags);
    port_write("krum");
#endif
    for (i = 0; i < D_COLS; i++) {
        if (out[i] != WANT[i]) {
            bad++;
        }
    }
    if (st != QORA_OK || bad != 0u) {
        port_write(" FAIL\n");
        return 1;
    }
    port_write(" ok\n");
    return 0;
}

#else /* OP_SHA256, OP_HMAC */
static uint8_t msg[MSG_LEN];              /* a chunk in RAM, as received */
static uint8_t digest[32];

int main(void)
{
    uint32_t i;
    for (i = 0; i < MSG_LEN; i++) {
        msg[i] = MSG[i];
    }
#ifdef OP_HMAC
    qn_hmac_sha256(KEY, sizeof KEY, msg, MSG_LEN, digest);
    port_write("hmac");
#else
    qn_sha256(msg, MSG_LEN, digest);
    port_write("sha256");
#endif
    if (qn_equal32(digest, WANT) != 1) {
        port_write(" FAIL\n");
        return 1;
    }
    port_write(" ok\n");
    return 0;
}
#endif
