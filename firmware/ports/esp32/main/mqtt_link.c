/* See mqtt_link.h. */
#include "mqtt_link.h"

#include <string.h>

void qm_reasm_init(qm_reasm *r, uint8_t *msg, size_t cap) {
    memset(r, 0, sizeof *r);
    r->msg = msg;
    r->cap = cap;
}

int qm_reasm_feed(qm_reasm *r, const char *topic, size_t topic_len, const uint8_t *data, size_t n,
                  size_t offset, size_t total) {
    if (offset == 0) {                       /* a new message; an unfinished one is lost */
        if (r->active) r->dropped++;
        r->active = 0;
        if (!topic || topic_len < 1 || topic_len > QN_FRAME_MAX_TOPIC || total > r->cap) {
            r->dropped++;
            return -1;
        }
        memcpy(r->topic, topic, topic_len);
        r->topic[topic_len] = '\0';
        r->topic_len = topic_len;
        r->total = total;
        r->have = 0;
        r->active = 1;
    } else if (!r->active || offset != r->have || total != r->total) {
        /* a piece of a message whose start we dropped, or out of order: TCP keeps order, so
         * this only follows a drop; wait for the next message */
        if (r->active) r->dropped++;
        r->active = 0;
        return -1;
    }
    if (n > r->total - r->have) {
        r->dropped++;
        r->active = 0;
        return -1;
    }
    memcpy(r->msg + r->have, data, n);
    r->have += n;
    if (r->have < r->total) return 0;
    r->active = 0;
    return 1;
}

size_t qm_reasm_frame(const qm_reasm *r, uint8_t *out, size_t cap) {
    return qn_frame_publish(out, cap, r->topic, r->topic_len, r->msg, r->total);
}

void qm_uplink_init(qm_uplink *u, uint8_t *buf, size_t cap, const char *fleet, const char *node,
                    qm_uplink_cb cb) {
    memset(u, 0, sizeof *u);
    qn_frame_rx_init(&u->rx, buf, cap);
    u->cb = cb;
    u->fleet = fleet;
    u->node = node;
}

static void on_frame(qm_uplink *u) {
    const char *topic, *leaf;
    const uint8_t *payload;
    size_t tl, pl, leaf_len;
    switch (u->rx.type) {
    case QN_FRAME_HELLO:
        u->hellos++;
        return;
    case QN_FRAME_LOG:
        if (u->cb.log) u->cb.log(u->cb.ctx, (const char *)u->rx.content, u->rx.content_len);
        return;
    case QN_FRAME_PUBLISH:
        break;
    default:
        u->refused++;
        return;
    }
    if (qn_frame_publish_parse(u->rx.content, u->rx.content_len, &topic, &tl, &payload, &pl) != 0) {
        u->refused++;
        return;
    }
    int kind = qn_topic_parse(topic, tl, u->fleet, NULL, &leaf, &leaf_len);
    if ((kind != QN_TOPIC_UPDATE && kind != QN_TOPIC_STATUS) || leaf_len != strlen(u->node) ||
        memcmp(leaf, u->node, leaf_len) != 0) {
        u->refused++;                        /* only the node's own topics go up */
        return;
    }
    memcpy(u->topic, topic, tl);
    u->topic[tl] = '\0';
    if (u->cb.publish) u->cb.publish(u->cb.ctx, u->topic, payload, pl);
    u->published++;
}

void qm_uplink_write(qm_uplink *u, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (qn_frame_rx_byte(&u->rx, p[i]) == 1) on_frame(u);
}
