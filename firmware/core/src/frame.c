/* Serial frames (docs/serial.md): COBS(type | content | CRC-32 of type and content, LE), 0x00.
 *
 * The CRC goes inside the COBS encoding, so a receiver checks it after unstuffing, and the
 * only byte with a meaning on the line is the 0x00 delimiter: whatever happens (garbage,
 * a board reset mid-frame, a lost byte), the next 0x00 puts the receiver back in step. */
#include "qnode/frame.h"

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void qn_frame_w_begin(qn_frame_w *w, uint8_t type, uint8_t *out, size_t cap)
{
    qn_cobs_w_init(&w->cobs, out, cap);
    w->crc = qn_crc32(0, &type, 1);
    qn_cobs_w_put(&w->cobs, &type, 1);
}

void qn_frame_w_put(qn_frame_w *w, const void *p, size_t n)
{
    w->crc = qn_crc32(w->crc, p, n);
    qn_cobs_w_put(&w->cobs, (const uint8_t *)p, n);
}

size_t qn_frame_w_end(qn_frame_w *w)
{
    uint8_t crc[4];
    size_t len;

    put_le32(crc, w->crc);
    qn_cobs_w_put(&w->cobs, crc, sizeof crc);
    len = qn_cobs_w_end(&w->cobs);
    if (len == 0 || len >= w->cobs.cap)
        return 0;                        /* no room for the delimiter */
    w->cobs.out[len] = 0;
    return len + 1;
}

size_t qn_frame_encode(uint8_t type, const uint8_t *content, size_t n, uint8_t *out, size_t cap)
{
    qn_frame_w w;
    qn_frame_w_begin(&w, type, out, cap);
    qn_frame_w_put(&w, content, n);
    return qn_frame_w_end(&w);
}

size_t qn_frame_publish(uint8_t *out, size_t cap, const char *topic, size_t topic_len,
                        const uint8_t *payload, size_t payload_len)
{
    qn_frame_w w;
    uint8_t head[2];

    if (!topic || !payload || topic_len < 1 || topic_len > QN_FRAME_MAX_TOPIC ||
        payload_len < 1 || payload_len > QN_FRAME_MAX_PAYLOAD)
        return 0;
    head[0] = (uint8_t)topic_len;
    head[1] = (uint8_t)(topic_len >> 8);
    qn_frame_w_begin(&w, QN_FRAME_PUBLISH, out, cap);
    qn_frame_w_put(&w, head, 2);
    qn_frame_w_put(&w, topic, topic_len);
    qn_frame_w_put(&w, payload, payload_len);
    return qn_frame_w_end(&w);
}

int qn_frame_publish_parse(const uint8_t *content, size_t n, const char **topic,
                           size_t *topic_len, const uint8_t **payload, size_t *payload_len)
{
    size_t tl, pl;
    if (n < 2)
        return -1;
    tl = (size_t)content[0] | ((size_t)content[1] << 8);
    if (tl < 1 || tl > QN_FRAME_MAX_TOPIC || tl > n - 2)
        return -1;
    pl = n - 2 - tl;
    /* An empty MQTT payload would delete a retained message: never part of this link. */
    if (pl < 1 || pl > QN_FRAME_MAX_PAYLOAD)
        return -1;
    *topic = (const char *)(content + 2);
    *topic_len = tl;
    *payload = content + 2 + tl;
    *payload_len = pl;
    return 0;
}

void qn_frame_rx_init(qn_frame_rx *rx, uint8_t *buf, size_t cap)
{
    rx->buf = buf;
    rx->cap = cap;
    rx->len = 0;
    rx->overflow = 0;
    rx->type = 0;
    rx->content = 0;
    rx->content_len = 0;
    rx->frames_ok = rx->crc_errors = rx->cobs_errors = rx->overflows = 0;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int qn_frame_rx_byte(qn_frame_rx *rx, uint8_t byte)
{
    size_t n, len;

    if (byte != 0) {
        /* Past the buffer the frame is lost, but its bytes are still consumed up to its 0x00:
         * stopping early would read the frame's tail as the start of the next one. */
        if (rx->len >= rx->cap)
            rx->overflow = 1;
        else
            rx->buf[rx->len++] = byte;
        return 0;
    }

    len = rx->len;
    rx->len = 0;
    if (rx->overflow) {
        rx->overflow = 0;
        rx->overflows++;
        return -1;
    }
    if (len == 0)
        return 0;                        /* an idle delimiter, e.g. the one sent after a reset */
    n = qn_cobs_decode(rx->buf, len, rx->buf, rx->cap);
    if (n == SIZE_MAX || n < 5) {        /* malformed, or too short for a type and a CRC */
        rx->cobs_errors++;
        return -1;
    }
    if (qn_crc32(0, rx->buf, n - 4) != get_le32(rx->buf + n - 4)) {
        rx->crc_errors++;
        return -1;
    }
    rx->frames_ok++;
    rx->type = rx->buf[0];
    rx->content = rx->buf + 1;
    rx->content_len = n - 5;
    return 1;
}
