/* The config blob: what provisioning writes for a board (docs/firmware.md).
 *
 *   "QNCF" u32 version=1
 *   str fleet, str node (u8 length + bytes), key[32]
 *   u8 n_sizes, u16 sizes[n_sizes]
 *   u32 epochs, u32 batch, u32 seed, i32 lr_q
 *   u8 attack, i32 attack_scale
 *   u8 mesh_n, u8 mesh_method, u8 mesh_f, mesh_n x (str id, key[32])
 *   u32 m, zero padding to a multiple of 4 from the blob start, i32 X[m * sizes[0]], u8 y[m]
 *   u32 CRC-32 of every byte before it
 * All little-endian. The blob must start 4-byte aligned (X is read in place). */
#include <string.h>

#include "qnode/node.h"

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    int err;
} cursor;

static uint32_t rd_u32(cursor *c) {
    if (c->err || c->n - c->pos < 4) { c->err = 1; return 0; }
    const uint8_t *p = c->p + c->pos;
    c->pos += 4;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint16_t rd_u16(cursor *c) {
    if (c->err || c->n - c->pos < 2) { c->err = 1; return 0; }
    const uint8_t *p = c->p + c->pos;
    c->pos += 2;
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint8_t rd_u8(cursor *c) {
    if (c->err || c->n - c->pos < 1) { c->err = 1; return 0; }
    return c->p[c->pos++];
}

static void rd_bytes(cursor *c, void *out, size_t k) {
    if (c->err || c->n - c->pos < k) { c->err = 1; return; }
    memcpy(out, c->p + c->pos, k);
    c->pos += k;
}

static void rd_id(cursor *c, char *out) {
    uint8_t k = rd_u8(c);
    if (k == 0 || k > QN_ID_MAX) { c->err = 1; return; }
    rd_bytes(c, out, k);
    if (!c->err) {
        out[k] = '\0';
        if (!qn_valid_id(out)) c->err = 1;
    }
}

static int32_t as_i32(uint32_t u) {
    /* two's complement without implementation-defined conversion */
    return u <= 0x7FFFFFFFu ? (int32_t)u : (int32_t)(u - 0x80000000u) - 0x7FFFFFFF - 1;
}

int qn_config_parse(qn_config *cfg, const uint8_t *blob, size_t n) {
    cursor c = {blob, n, 0, 0};
    memset(cfg, 0, sizeof *cfg);
    if (n < 12 || memcmp(blob, "QNCF", 4) != 0) return -1;
    c.pos = 4;
    if (rd_u32(&c) != 1) return -2;
    rd_id(&c, cfg->fleet);
    rd_id(&c, cfg->node);
    rd_bytes(&c, cfg->key, 32);
    cfg->n_sizes = rd_u8(&c);
    if (c.err || cfg->n_sizes < 2 || cfg->n_sizes > QN_TRAIN_MAX_LAYERS + 1) return -3;
    for (uint8_t i = 0; i < cfg->n_sizes; i++) {
        cfg->sizes[i] = rd_u16(&c);
        if (cfg->sizes[i] == 0) return -3;
    }
    cfg->epochs = rd_u32(&c);
    cfg->batch = rd_u32(&c);
    cfg->seed = rd_u32(&c);
    cfg->lr_q = as_i32(rd_u32(&c));
    cfg->attack = rd_u8(&c);
    cfg->attack_scale = as_i32(rd_u32(&c));
    cfg->mesh_n = rd_u8(&c);
    cfg->mesh_method = rd_u8(&c);
    cfg->mesh_f = rd_u8(&c);
    if (cfg->mesh_n > QN_MESH_MAX) return -4;
    for (uint8_t i = 0; i < cfg->mesh_n; i++) {
        rd_id(&c, cfg->mesh_ids[i]);
        rd_bytes(&c, cfg->mesh_keys[i], 32);
    }
    cfg->m = rd_u32(&c);
    if (c.err || cfg->m == 0 || cfg->m > QN_MAX_ROWS || cfg->batch == 0 || cfg->batch > QN_TRAIN_MAX_BATCH)
        return -5;
    while (c.pos % 4 != 0) (void)rd_u8(&c);
    size_t features = (size_t)cfg->m * cfg->sizes[0];
    if (c.err || (c.n - c.pos) / 4 < features) return -6;
    cfg->X = (const int32_t *)(const void *)(blob + c.pos);  /* aligned: see the format note */
    c.pos += features * 4;
    if (c.n - c.pos < cfg->m) return -6;
    cfg->y = blob + c.pos;
    c.pos += cfg->m;
    size_t body = c.pos;
    uint32_t crc = rd_u32(&c);
    if (c.err || crc != qn_crc32(0, blob, body)) return -7;
    for (uint32_t i = 0; i < cfg->m; i++)
        if (cfg->y[i] >= cfg->sizes[cfg->n_sizes - 1]) return -8;
    return 0;
}
