/* Serial framing (docs/serial.md): COBS(type | content | CRC-32 LE) then 0x00.
 * CRC-32 is IEEE 802.3 / zlib's crc32. The receiver resynchronises on every 0x00. */
#ifndef QNODE_FRAME_H
#define QNODE_FRAME_H
#include <stddef.h>
#include <stdint.h>

enum {
    QN_FRAME_HELLO = 0x01,    /* board -> gateway: CBOR {0: version, 2: fleet, 3: node, 25: firmware} */
    QN_FRAME_PUBLISH = 0x02,  /* both ways: u16 LE topic length, topic, MQTT payload */
    QN_FRAME_LOG = 0x03,      /* board -> gateway: UTF-8 text */
    QN_FRAME_ASK_HELLO = 0x04 /* gateway -> board: send HELLO (after a gateway restart) */
};

/* Limits of docs/serial.md. A PUBLISH carries at most a 16384-byte MQTT payload (the wire
 * protocol's message limit) and a topic of at most 254 bytes, so content fits in 16640. */
#define QN_FRAME_MAX_PAYLOAD 16384u
#define QN_FRAME_MAX_TOPIC 254u
#define QN_FRAME_MAX_CONTENT (QN_FRAME_MAX_PAYLOAD + 256u)

/* zlib-compatible: qn_crc32(0, p, n) == zlib.crc32(p[:n]); chainable. */
uint32_t qn_crc32(uint32_t crc, const void *data, size_t n);

/* COBS encode n bytes; returns the encoded length (no trailing 0), or 0 if cap is too small. */
size_t qn_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/* COBS decode (input without the trailing 0); returns the decoded length or SIZE_MAX if malformed
 * or cap is too small. in == out is allowed (decodes in place). */
size_t qn_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Streaming COBS encoder: the same bytes as qn_cobs_encode of everything put, without
 * gathering the input in one buffer first. */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t len;          /* bytes written so far, including the open block's code byte */
    size_t code_at;      /* where the open block's code byte goes */
    uint8_t code;        /* 1 + data bytes in the open block */
    int err;             /* cap was too small; later puts do nothing */
} qn_cobs_w;

void qn_cobs_w_init(qn_cobs_w *w, uint8_t *out, size_t cap);
void qn_cobs_w_put(qn_cobs_w *w, const uint8_t *p, size_t n);
/* Close the last block; returns the encoded length (no trailing 0), or 0 after an overflow. */
size_t qn_cobs_w_end(qn_cobs_w *w);

/* Worst-case encoded size of a frame whose content is n bytes (type, CRC, COBS overhead, 0x00). */
#define QN_FRAME_MAX_ENCODED(n) ((n) + 5u + ((n) + 5u) / 254u + 2u)

/* Whole frame into out (ending with 0x00); returns its length or 0 if cap is too small. */
size_t qn_frame_encode(uint8_t type, const uint8_t *content, size_t n, uint8_t *out, size_t cap);

/* Streaming frame writer: one frame whose content comes in pieces (a PUBLISH's topic length,
 * topic and payload from three buffers). Same bytes as qn_frame_encode of the concatenation. */
typedef struct {
    qn_cobs_w cobs;
    uint32_t crc;
} qn_frame_w;

void qn_frame_w_begin(qn_frame_w *w, uint8_t type, uint8_t *out, size_t cap);
void qn_frame_w_put(qn_frame_w *w, const void *p, size_t n);
/* Append the CRC and the 0x00; returns the frame's length, or 0 if cap was too small. */
size_t qn_frame_w_end(qn_frame_w *w);

/* A PUBLISH frame: topic (1..QN_FRAME_MAX_TOPIC bytes), payload (1..QN_FRAME_MAX_PAYLOAD).
 * Returns the frame's length, or 0 if an argument is out of range or cap is too small. */
size_t qn_frame_publish(uint8_t *out, size_t cap, const char *topic, size_t topic_len,
                        const uint8_t *payload, size_t payload_len);
/* Split a PUBLISH frame's content. 0 on success (topic is not NUL-terminated), -1 if the
 * content breaks docs/serial.md (short, topic length 0 or > QN_FRAME_MAX_TOPIC or past the
 * end, empty or oversize payload). */
int qn_frame_publish_parse(const uint8_t *content, size_t n, const char **topic,
                           size_t *topic_len, const uint8_t **payload, size_t *payload_len);

/* Streaming receiver over a caller buffer. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;          /* bytes gathered since the last 0x00 */
    int overflow;        /* the current frame did not fit: dropped at its 0x00 */
    /* the last complete frame (valid until the next call of qn_frame_rx_byte) */
    uint8_t type;
    const uint8_t *content;
    size_t content_len;
    /* counters for the gateway / tests */
    uint32_t frames_ok, crc_errors, cobs_errors, overflows;
} qn_frame_rx;

/* cap: the encoded bytes of one frame without its 0x00; QN_FRAME_MAX_ENCODED(n) - 1 holds
 * every frame with up to n content bytes. */
void qn_frame_rx_init(qn_frame_rx *rx, uint8_t *buf, size_t cap);
/* Feed one byte. Returns 1 when a valid frame completed (rx->type/content/content_len),
 * 0 when more bytes are needed, -1 when a frame was dropped (bad CRC, bad COBS, too short,
 * overflow). Garbage between frames is dropped at the next 0x00. An empty frame (0x00 right
 * after 0x00) is no frame: it returns 0 and counts nothing. The type is not checked: a frame
 * of an unknown type is returned, and the caller ignores it. */
int qn_frame_rx_byte(qn_frame_rx *rx, uint8_t byte);

#endif
