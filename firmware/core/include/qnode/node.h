/* The node: boot -> HELLO -> wait round -> train -> send update -> receive model -> persist.
 * Portable; the port supplies a qn_hal (UART, clock, storage) and the provisioned config
 * (docs/firmware.md: the config blob). All memory is static, sized by QN_MAX_PARAMS and
 * QN_MAX_ROWS at build time. */
#ifndef QNODE_NODE_H
#define QNODE_NODE_H
#include <stddef.h>
#include <stdint.h>

#include "qnode/frame.h"
#include "qnode/train.h"
#include "qnode/wire.h"

#ifndef QN_MAX_PARAMS
#define QN_MAX_PARAMS 2560          /* the 64-32-10 MLP has 2,410 */
#endif
#ifndef QN_MAX_ROWS
#define QN_MAX_ROWS 256
#endif
#ifndef QN_MESH_MAX
#define QN_MESH_MAX 8
#endif
#define QN_RX_MAX (16384 + 512)
/* The largest chunk (elements) a node encodes: 4 KiB of Q16.16, the protocol's default. */
#define QN_CHUNK_MAX 1024u
/* A ROUND further than this above the last round sent is refused (it would end every later round). */
#ifndef QN_ROUND_JUMP_MAX
#define QN_ROUND_JUMP_MAX 1000000u
#endif
#define QN_FIRMWARE "qnode/1"

typedef struct {
    void *ctx;
    int (*uart_read)(void *ctx);                          /* next byte, or -1 when none waits */
    void (*uart_write)(void *ctx, const uint8_t *p, size_t n);
    uint32_t (*millis)(void *ctx);
    int (*load)(void *ctx, void *buf, size_t n);          /* persistent state; 0 = ok */
    int (*save)(void *ctx, const void *buf, size_t n);
} qn_hal;

enum { QN_ATTACK_NONE = 0, QN_ATTACK_SIGN_FLIP = 1, QN_ATTACK_NOISE = 2 };

/* The provisioned configuration (the "config blob", docs/firmware.md). */
typedef struct {
    char fleet[QN_ID_MAX + 1];
    char node[QN_ID_MAX + 1];
    uint8_t key[32];
    uint16_t sizes[QN_TRAIN_MAX_LAYERS + 1];
    uint8_t n_sizes;
    uint32_t epochs, batch, seed;
    int32_t lr_q;
    uint8_t attack;                 /* QN_ATTACK_*: for hardware-in-the-loop tests of defences */
    int32_t attack_scale;           /* Q16.16 */
    /* mesh mode: the node aggregates its neighbours' updates itself */
    uint8_t mesh_n;                 /* 0 = aggregator mode; else nodes in the mesh (self included) */
    uint8_t mesh_method;            /* 0 trimmed mean, 1 krum */
    uint8_t mesh_f;                 /* trimmed per side / Krum's f */
    char mesh_ids[QN_MESH_MAX > 0 ? QN_MESH_MAX : 1][QN_ID_MAX + 1];   /* C99 has no empty arrays */
    uint8_t mesh_keys[QN_MESH_MAX > 0 ? QN_MESH_MAX : 1][32];
    /* the local data shard */
    uint32_t m;
    const int32_t *X;               /* m x sizes[0] Q16.16 */
    const uint8_t *y;
} qn_config;

/* What survives a reset (through hal.load / hal.save). */
typedef struct {
    uint32_t magic;
    uint32_t last_sent_round;       /* never train a round twice */
    uint32_t model_version;
    uint32_t mesh_round;
} qn_persist;

typedef struct {
    const qn_hal *hal;
    const qn_config *cfg;
    qn_persist st;
    qn_frame_rx rx;
    qn_round ann;
    int have_ann;
    uint32_t model_version_building;
    uint32_t chunks_have;           /* count of distinct chunks received */
    uint8_t chunk_seen[64];         /* bitmap, up to 512 chunks */
    uint32_t chunk_count;
    uint32_t elements;
    int model_ready;                /* global holds ann.version, digest checked */
    uint32_t rounds_sent;
    uint32_t frames_bad;
    uint32_t refused_round;         /* the last ROUND refused (logged once) */
    /* mesh */
    uint32_t mesh_have;
    uint8_t mesh_got[QN_MESH_MAX > 0 ? QN_MESH_MAX : 1];
} qn_node;

/* The training seed of a round: round r's epoch e visits rows in qn_node_order(seed + r*E + e),
 * so no two epochs of one node, in any rounds, share an order (mod 2^32). */
static inline uint32_t qn_round_seed(uint32_t seed, uint32_t round, uint32_t epochs) {
    return seed + round * (epochs ? epochs : 1u);
}

/* Parse a config blob (docs/firmware.md); 0 or a negative error. The shard pointers point
 * into the blob. */
int qn_config_parse(qn_config *cfg, const uint8_t *blob, size_t n);

void qn_node_init(qn_node *node, const qn_hal *hal, const qn_config *cfg);
/* Process what the UART has; train and send when a round is ready. Call forever. Returns the
 * number of rounds sent so far. */
uint32_t qn_node_poll(qn_node *node);
/* SHA-256 of the node's current global model (for tests and mesh agreement). */
void qn_node_model_digest(const qn_node *node, uint8_t out[32]);

#endif
