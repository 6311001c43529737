/* The node state machine (docs/firmware.md). Single-threaded and static: qn_node_poll()
 * drains the UART, acts on whole frames, and trains synchronously when a round is ready;
 * while it trains, the UART's own flow control (or the gateway's buffering) holds the
 * next frames. */
#include <string.h>

#include "qnode/cbor.h"
#include "qnode/hash.h"
#include "qnode/node.h"
#include "qora/aggregate.h"
#include "qora/q16.h"

#define PERSIST_MAGIC 0x514E5331u /* "QNS1" */
#define TX_CONTENT_MAX (QN_ID_MAX * 2 + 64 + 4096 + 256)

static int32_t g_global[QN_MAX_PARAMS];   /* the global model being received / held */
static int32_t g_local[QN_MAX_PARAMS];    /* local training, then the delta */
static uint32_t g_order[QN_MAX_ROWS];
static uint64_t g_scratch[4096];          /* training and aggregation scratch (32 KiB) */
static uint8_t g_rx[QN_RX_MAX];
static uint8_t g_msg[TX_CONTENT_MAX];
static uint8_t g_frame[QN_FRAME_MAX_ENCODED(TX_CONTENT_MAX)];
#if QN_MESH_MAX > 0
static int32_t g_mesh[QN_MESH_MAX][QN_MAX_PARAMS];  /* neighbours' deltas (self included) */
static uint32_t g_mesh_chunks[QN_MESH_MAX];         /* bitmask of chunks received */
#endif

static void send_frame(qn_node *nd, uint8_t type, const uint8_t *content, size_t n) {
    static const uint8_t delimiter = 0;  /* ends any noise on the line before the frame */
    size_t k = qn_frame_encode(type, content, n, g_frame, sizeof g_frame);
    if (!k) return;
    nd->hal->uart_write(nd->hal->ctx, &delimiter, 1);
    nd->hal->uart_write(nd->hal->ctx, g_frame, k);
}

static void log_text(qn_node *nd, const char *s) {
    send_frame(nd, QN_FRAME_LOG, (const uint8_t *)s, strlen(s));
}


static size_t put_u32(char *out, uint32_t v) {
    char tmp[10];
    size_t n = 0, k = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) out[k++] = tmp[--n];
    out[k] = '\0';
    return k;
}

static void send_hello(qn_node *nd) {
    qn_cbor_w w;
    qn_cbor_w_init(&w, g_msg, sizeof g_msg);
    qn_cbor_head(&w, 5, 4);
    qn_cbor_uint(&w, 0); qn_cbor_uint(&w, 1);
    qn_cbor_uint(&w, 2); qn_cbor_tstr(&w, nd->cfg->fleet, strlen(nd->cfg->fleet));
    qn_cbor_uint(&w, 3); qn_cbor_tstr(&w, nd->cfg->node, strlen(nd->cfg->node));
    qn_cbor_uint(&w, 25); qn_cbor_tstr(&w, QN_FIRMWARE, sizeof QN_FIRMWARE - 1);
    if (!w.err) send_frame(nd, QN_FRAME_HELLO, g_msg, w.len);
}

static void publish(qn_node *nd, const char *topic, const uint8_t *payload, size_t n) {
    size_t t = strlen(topic);
    static uint8_t content[TX_CONTENT_MAX + 2 + 128];
    if (2 + t + n > sizeof content) return;
    content[0] = (uint8_t)(t & 0xFF);
    content[1] = (uint8_t)(t >> 8);
    memcpy(content + 2, topic, t);
    memcpy(content + 2 + t, payload, n);
    send_frame(nd, QN_FRAME_PUBLISH, content, 2 + t + n);
}

static void save(qn_node *nd) {
    if (nd->hal->save) (void)nd->hal->save(nd->hal->ctx, &nd->st, sizeof nd->st);
}

void qn_node_init(qn_node *nd, const qn_hal *hal, const qn_config *cfg) {
    memset(nd, 0, sizeof *nd);
    nd->hal = hal;
    nd->cfg = cfg;
    qn_frame_rx_init(&nd->rx, g_rx, sizeof g_rx);
    if (!hal->load || hal->load(hal->ctx, &nd->st, sizeof nd->st) != 0 || nd->st.magic != PERSIST_MAGIC) {
        memset(&nd->st, 0, sizeof nd->st);
        nd->st.magic = PERSIST_MAGIC;
    }
    send_hello(nd);
    /* seen online (retained, through the gateway); the gateway's will says offline */
    char topic[QN_ID_MAX * 2 + 32];
    size_t sn = qn_status_encode(g_msg, sizeof g_msg, cfg->fleet, cfg->node, 1);
    if (sn && qn_topic(topic, sizeof topic, cfg->fleet, "status", cfg->node)) publish(nd, topic, g_msg, sn);
    char msg[5 + QN_ID_MAX + 17 + 10 + 1] = "boot ";   /* + node id + text + a u32 + NUL */
    size_t k = strlen(msg);
    memcpy(msg + k, cfg->node, strlen(cfg->node) + 1);
    k = strlen(msg);
    memcpy(msg + k, " last sent round ", 17);
    put_u32(msg + k + 17, nd->st.last_sent_round);
    log_text(nd, msg);
}

void qn_node_model_digest(const qn_node *nd, uint8_t out[32]) {
    qn_sha256_ctx c;
    uint8_t le[4];
    qn_sha256_init(&c);
    for (uint32_t i = 0; i < nd->elements; i++) {
        qn_put_le32(le, g_global[i]);
        qn_sha256_update(&c, le, 4);
    }
    qn_sha256_final(&c, out);
}

static uint32_t n_params(const qn_config *cfg) {
    qn_shape s = {cfg->sizes, cfg->n_sizes};
    return (uint32_t)qn_n_params(&s);
}

/* ---- model chunks ------------------------------------------------------------------- */
static void on_model_chunk(qn_node *nd, const uint8_t *p, size_t n) {
    qn_model_chunk mc;
    if (qn_model_chunk_decode(p, n, &mc) != QN_OK || strcmp(mc.fleet, nd->cfg->fleet) != 0) {
        nd->frames_bad++;
        return;
    }
    if (mc.encoding != 0 || mc.elements > QN_MAX_PARAMS || mc.elements != n_params(nd->cfg) ||
        mc.count > 512 || mc.index >= mc.count || mc.data_len % 4 != 0) {
        nd->frames_bad++;
        return;
    }
    if (mc.version != nd->model_version_building || nd->elements != mc.elements) {
        nd->model_version_building = mc.version;
        nd->elements = mc.elements;
        nd->chunks_have = 0;
        nd->chunk_count = mc.count;
        nd->model_ready = 0;
        memset(nd->chunk_seen, 0, sizeof nd->chunk_seen);
    }
    uint32_t k = (uint32_t)(mc.data_len / 4);
    /* every chunk but the last holds C elements; the last holds the rest */
    uint32_t offset = mc.index + 1 < mc.count ? mc.index * k : mc.elements - k;
    if (k > mc.elements || offset > mc.elements - k) {
        nd->frames_bad++;
        return;
    }
    for (uint32_t i = 0; i < k; i++) g_global[offset + i] = qn_le32(mc.data + 4 * i);
    uint8_t bit = (uint8_t)(1u << (mc.index & 7));
    if (!(nd->chunk_seen[mc.index >> 3] & bit)) {
        nd->chunk_seen[mc.index >> 3] |= bit;
        nd->chunks_have++;
    }
}

static int model_matches_announcement(qn_node *nd) {
    if (!nd->have_ann || nd->chunks_have != nd->chunk_count || nd->model_version_building != nd->ann.version ||
        nd->elements != nd->ann.elements)
        return 0;
    uint8_t d[32];
    qn_node_model_digest(nd, d);
    return qn_equal32(d, nd->ann.digest);
}

/* ---- training and sending ------------------------------------------------------------ */
static int32_t sat_sub(int32_t a, int32_t b) {
    int64_t d = (int64_t)a - (int64_t)b;
    return d > INT32_MAX ? INT32_MAX : d < INT32_MIN ? INT32_MIN : (int32_t)d;
}

static void compute_delta(qn_node *nd, uint32_t round) {
    const qn_config *cfg = nd->cfg;
    qn_shape s = {cfg->sizes, cfg->n_sizes};
    uint32_t np = nd->elements;
    memcpy(g_local, g_global, np * sizeof g_local[0]);
    (void)qn_train(g_local, &s, cfg->X, cfg->y, cfg->m, cfg->epochs, cfg->batch, cfg->lr_q,
                   qn_round_seed(cfg->seed, round, cfg->epochs), g_order, g_scratch, sizeof g_scratch);
    uint32_t flags = 0;
    for (uint32_t i = 0; i < np; i++) {
        int32_t d = sat_sub(g_local[i], g_global[i]);
        if (cfg->attack == QN_ATTACK_SIGN_FLIP) d = qora_q16_mul(d, -cfg->attack_scale, &flags);
        g_local[i] = d;
    }
}

static void send_update(qn_node *nd, uint32_t round, uint32_t chunk_elements) {
    const qn_config *cfg = nd->cfg;
    char topic[QN_ID_MAX * 2 + 32];
    if (!qn_topic(topic, sizeof topic, cfg->fleet, "update", cfg->node)) return;
    uint32_t np = nd->elements;
    uint32_t count = (np + chunk_elements - 1) / chunk_elements;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t start = i * chunk_elements;
        uint32_t k = np - start < chunk_elements ? np - start : chunk_elements;
        size_t n = qn_update_encode(g_msg, sizeof g_msg, cfg->fleet, cfg->node, round, i, count, np,
                                    cfg->m, g_local + start, k, cfg->key);
        if (n) publish(nd, topic, g_msg, n);
    }
}

#if QN_MESH_MAX > 0
static void hex32(char *out, const uint8_t d[32]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = '\0';
}

static int mesh_index(const qn_config *cfg, const char *node) {
    for (int i = 0; i < cfg->mesh_n; i++)
        if (strcmp(cfg->mesh_ids[i], node) == 0) return i;
    return -1;
}

static void mesh_reset(qn_node *nd) {
    nd->mesh_have = 0;
    memset(nd->mesh_got, 0, sizeof nd->mesh_got);
    memset(g_mesh_chunks, 0, sizeof g_mesh_chunks);
}

static void mesh_store(qn_node *nd, int who, uint32_t index, uint32_t count, const int32_t *vals,
                       const uint8_t *le, uint32_t k, uint32_t start) {
    for (uint32_t i = 0; i < k; i++) g_mesh[who][start + i] = vals ? vals[i] : qn_le32(le + 4 * i);
    g_mesh_chunks[who] |= 1u << index;
    if (!nd->mesh_got[who] && g_mesh_chunks[who] == ((count >= 32) ? 0xFFFFFFFFu : (1u << count) - 1u)) {
        nd->mesh_got[who] = 1;
        nd->mesh_have++;
    }
}

/* Every member has sent: aggregate as the aggregator would, apply, start the next round. */
static void mesh_close(qn_node *nd) {
    const qn_config *cfg = nd->cfg;
    uint32_t np = nd->elements, flags = 0;
    qora_status st;
    if (cfg->mesh_method == 1) {
        st = qora_multi_krum_q16(&g_mesh[0][0], cfg->mesh_n, np, QN_MAX_PARAMS, cfg->mesh_f, 1, g_local,
                                 NULL, NULL, NULL, g_scratch, sizeof g_scratch, &flags);
    } else {
        st = qora_trimmed_mean_q16(&g_mesh[0][0], cfg->mesh_n, np, QN_MAX_PARAMS, cfg->mesh_f, g_local, NULL,
                                   g_scratch, sizeof g_scratch, &flags);
    }
    if (st != QORA_OK) {
        log_text(nd, "mesh: aggregation refused");
        return;
    }
    for (uint32_t i = 0; i < np; i++) g_global[i] = qora_q16_add(g_global[i], g_local[i], &flags);
    nd->st.mesh_round = nd->ann.round;
    nd->st.model_version = nd->ann.round;
    save(nd);
    uint8_t d[32];
    char msg[128] = "mesh round ";
    size_t k = strlen(msg);
    k += put_u32(msg + k, nd->ann.round);
    memcpy(msg + k, " digest ", 8);
    qn_node_model_digest(nd, d);
    hex32(msg + k + 8, d);
    log_text(nd, msg);
    /* the mesh announces its own next round */
    nd->ann.round += 1;
    nd->ann.version = nd->st.model_version;
    qn_node_model_digest(nd, nd->ann.digest);
    nd->model_version_building = nd->ann.version;
    mesh_reset(nd);
}

static void on_mesh_update(qn_node *nd, const uint8_t *p, size_t n) {
    qn_update_chunk u;
    if (qn_update_decode(p, n, &u) != QN_OK || strcmp(u.fleet, nd->cfg->fleet) != 0) { nd->frames_bad++; return; }
    int who = mesh_index(nd->cfg, u.node);
    if (who < 0 || qn_update_verify(&u, nd->cfg->mesh_keys[who]) != QN_OK) { nd->frames_bad++; return; }
    if (!nd->have_ann || u.round != nd->ann.round || u.elements != nd->elements || u.encoding != 0 ||
        u.index >= u.count || u.count > 32 || u.data_len % 4 != 0) { nd->frames_bad++; return; }
    uint32_t k = (uint32_t)(u.data_len / 4);
    uint32_t start = u.index + 1 < u.count ? u.index * k : u.elements - k;
    if (k > u.elements || start > u.elements - k) { nd->frames_bad++; return; }
    mesh_store(nd, who, u.index, u.count, NULL, u.data, k, start);
}
#endif

static void maybe_train(qn_node *nd) {
    if (!nd->have_ann || nd->ann.round <= nd->st.last_sent_round) return;
    if (!nd->model_ready) {
        if (!model_matches_announcement(nd)) return;
        nd->model_ready = 1;
    }
    uint32_t round = nd->ann.round;
    compute_delta(nd, round);
    send_update(nd, round, nd->ann.chunk_elements);
    nd->st.last_sent_round = round;
    nd->rounds_sent++;
    save(nd);
    char msg[48] = "sent round ";
    put_u32(msg + 11, round);
    log_text(nd, msg);
#if QN_MESH_MAX > 0
    if (nd->cfg->mesh_n) {
        int self = mesh_index(nd->cfg, nd->cfg->node);
        uint32_t ce = nd->ann.chunk_elements ? nd->ann.chunk_elements : 1024;
        uint32_t count = (nd->elements + ce - 1) / ce;
        for (uint32_t i = 0; i < count && self >= 0; i++) {
            uint32_t start = i * ce, k = nd->elements - start < ce ? nd->elements - start : ce;
            mesh_store(nd, self, i, count, g_local + start, NULL, k, start);
        }
    }
#endif
}

static void on_round(qn_node *nd, const uint8_t *p, size_t n) {
    qn_round a;
    if (qn_round_decode(p, n, &a) != QN_OK || strcmp(a.fleet, nd->cfg->fleet) != 0 || a.mode != 0 ||
        a.elements != n_params(nd->cfg)) {
        nd->frames_bad++;
        return;
    }
    /* what this board cannot do, it must not half do: a chunk size its buffers cannot hold
     * (the round would be marked sent with nothing sent), a mesh round of more chunks than its
     * 32-bit bookkeeping, or a round so far ahead that it would end all later rounds (a
     * misconfigured broker or gateway could deliver one) */
    if (a.chunk_elements == 0 || a.chunk_elements > QN_CHUNK_MAX ||
        (nd->cfg->mesh_n && (a.elements + a.chunk_elements - 1) / a.chunk_elements > 32) ||
        (a.round > nd->st.last_sent_round && a.round - nd->st.last_sent_round > QN_ROUND_JUMP_MAX)) {
        if (nd->refused_round != a.round) {
            nd->refused_round = a.round;
            log_text(nd, "round refused: chunk size or round number outside what this board accepts");
        }
        nd->frames_bad++;
        return;
    }
    if (nd->cfg->mesh_n && nd->rounds_sent > 0) return;  /* a mesh drives its own rounds after the first */
    if (!nd->have_ann || a.round != nd->ann.round || a.version != nd->ann.version)
        nd->model_ready = 0;
    nd->ann = a;
    nd->have_ann = 1;
}

static void on_frame(qn_node *nd) {
    const uint8_t *c = nd->rx.content;
    size_t n = nd->rx.content_len;
    if (nd->rx.type == QN_FRAME_ASK_HELLO) {
        send_hello(nd);
        return;
    }
    if (nd->rx.type != QN_FRAME_PUBLISH || n < 2) return;
    size_t tl = (size_t)c[0] | ((size_t)c[1] << 8);
    char topic[QN_ID_MAX * 2 + 40];
    if (n < 2 + tl || tl >= sizeof topic) { nd->frames_bad++; return; }
    memcpy(topic, c + 2, tl);
    topic[tl] = '\0';
    const uint8_t *payload = c + 2 + tl;
    size_t pn = n - 2 - tl;
    const char *kind = topic + 8 + strlen(nd->cfg->fleet) + 1;   /* after "qora/v1/{fleet}/" */
    if (strncmp(topic, "qora/v1/", 8) != 0 || strncmp(topic + 8, nd->cfg->fleet, strlen(nd->cfg->fleet)) != 0 ||
        tl < 8 + strlen(nd->cfg->fleet) + 2 || topic[8 + strlen(nd->cfg->fleet)] != '/') {
        nd->frames_bad++;
        return;
    }
    if (strcmp(kind, "round") == 0) on_round(nd, payload, pn);
    else if (strncmp(kind, "model/", 6) == 0) on_model_chunk(nd, payload, pn);
#if QN_MESH_MAX > 0
    else if (strncmp(kind, "update/", 7) == 0 && nd->cfg->mesh_n) on_mesh_update(nd, payload, pn);
#endif
}

uint32_t qn_node_poll(qn_node *nd) {
    for (int budget = 0; budget < 8192; budget++) {
        int b = nd->hal->uart_read(nd->hal->ctx);
        if (b < 0) break;
        if (qn_frame_rx_byte(&nd->rx, (uint8_t)b) == 1) {
            on_frame(nd);
#if QN_MESH_MAX > 0
            /* close before the next frame: it may already be a neighbour's next-round update */
            if (nd->cfg->mesh_n && nd->have_ann && nd->mesh_have == nd->cfg->mesh_n) mesh_close(nd);
#endif
        }
    }
    maybe_train(nd);
#if QN_MESH_MAX > 0
    if (nd->cfg->mesh_n && nd->have_ann && nd->mesh_have == nd->cfg->mesh_n) mesh_close(nd);
#endif
    return nd->rounds_sent;
}
