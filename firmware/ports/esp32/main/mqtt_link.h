/* The ESP32 node's link between esp-mqtt and the portable node core.
 *
 * The core talks to a serial line (docs/serial.md). On the ESP32 there is no gateway: the board
 * speaks MQTT itself, so this file plays the gateway's part on the board. Downward, each MQTT
 * message (which esp-mqtt may hand over in pieces) becomes one PUBLISH frame, exactly the bytes
 * `qora gateway` would put on a serial line; upward, the frames the core writes are parsed back
 * and its own update / status publishes go to the broker. The core is unchanged and cannot tell.
 *
 * Portable C99 without ESP-IDF headers (the tests build it on the host); qnode_main.c wires it
 * to esp-mqtt, FreeRTOS and NVS. */
#ifndef QNODE_ESP32_MQTT_LINK_H
#define QNODE_ESP32_MQTT_LINK_H
#include <stddef.h>
#include <stdint.h>

#include "qnode/frame.h"
#include "qnode/wire.h"

/* ---- downward: MQTT messages -> PUBLISH frames -------------------------------------------- */

/* Gathers one message from esp-mqtt's MQTT_EVENT_DATA pieces (a message longer than esp-mqtt's
 * buffer arrives as several events; only the first carries the topic). */
typedef struct {
    uint8_t *msg;                            /* caller's buffer for one whole payload */
    size_t cap;
    char topic[QN_FRAME_MAX_TOPIC + 1];      /* NUL-terminated */
    size_t topic_len;
    size_t total;                            /* the message's length */
    size_t have;                             /* bytes gathered so far */
    int active;
    uint32_t dropped;                        /* messages dropped: too long, pieces out of order */
} qm_reasm;

void qm_reasm_init(qm_reasm *r, uint8_t *msg, size_t cap);
/* Feed one MQTT_EVENT_DATA: its topic (NULL / 0 on continuation pieces), its data, the data's
 * offset in the message and the message's total length. Returns 1 when the message is complete
 * (r->topic, r->msg[0 .. r->total)), 0 when more pieces are needed, -1 when it was dropped. */
int qm_reasm_feed(qm_reasm *r, const char *topic, size_t topic_len, const uint8_t *data, size_t n,
                  size_t offset, size_t total);
/* The PUBLISH frame of the completed message into out (QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)
 * bytes always suffice); its length, or 0 (an empty payload: a retained message deleted). */
size_t qm_reasm_frame(const qm_reasm *r, uint8_t *out, size_t cap);

/* ---- upward: the core's frames -> MQTT publishes ------------------------------------------ */

typedef struct {
    void *ctx;
    /* publish one message at QoS 1, not retained (topic is NUL-terminated) */
    void (*publish)(void *ctx, const char *topic, const uint8_t *payload, size_t n);
    /* a LOG frame's text (not NUL-terminated) */
    void (*log)(void *ctx, const char *text, size_t n);
} qm_uplink_cb;

typedef struct {
    qn_frame_rx rx;
    qm_uplink_cb cb;
    const char *fleet, *node;
    char topic[QN_FRAME_MAX_TOPIC + 1];
    uint32_t published, refused, hellos;
} qm_uplink;

/* buf holds one encoded frame: QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT) - 1 bytes. */
void qm_uplink_init(qm_uplink *u, uint8_t *buf, size_t cap, const char *fleet, const char *node,
                    qm_uplink_cb cb);
/* The core's uart_write: whole PUBLISH frames to the node's own update / status topics are
 * published (anything else is refused, as the gateway and the broker's ACL would); LOG text is
 * handed to cb.log; HELLO is counted (the MQTT connection already says who the board is). */
void qm_uplink_write(qm_uplink *u, const uint8_t *p, size_t n);

#endif
