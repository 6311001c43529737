/* Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999), the form docs/serial.md fixes.
 *
 * The input is cut at every 0x00 into blocks; each block is written as a code byte
 * (1 + its length) and its non-zero bytes, and the 0x00 that ended it is implied. A block
 * that reaches 254 bytes is closed with code 0xFF, which implies no 0x00. The encoder opens
 * a new block only when more input follows, so 254 non-zero bytes encode as FF + 254 bytes
 * (no trailing 01). Encoded data never contains 0x00, which is left to delimit frames. */
#include "qnode/frame.h"

void qn_cobs_w_init(qn_cobs_w *w, uint8_t *out, size_t cap)
{
    w->out = out;
    w->cap = cap;
    w->len = 1;          /* room for the first block's code byte */
    w->code_at = 0;
    w->code = 1;
    w->err = cap < 1;
}

/* Write the open block's code and reserve a byte for the next one's. */
static void close_block(qn_cobs_w *w)
{
    w->out[w->code_at] = w->code;
    if (w->len >= w->cap) {
        w->err = 1;
        return;
    }
    w->code_at = w->len++;
    w->code = 1;
}

void qn_cobs_w_put(qn_cobs_w *w, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n && !w->err; i++) {
        /* A full block is closed lazily, here, so a final full block gets no empty successor. */
        if (w->code == 0xFF) {
            close_block(w);
            if (w->err)
                break;
        }
        if (p[i] == 0) {
            close_block(w);
        } else {
            if (w->len >= w->cap) {
                w->err = 1;
                break;
            }
            w->out[w->len++] = p[i];
            w->code++;
        }
    }
}

size_t qn_cobs_w_end(qn_cobs_w *w)
{
    if (w->err)
        return 0;
    w->out[w->code_at] = w->code;
    return w->len;
}

size_t qn_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    qn_cobs_w w;
    qn_cobs_w_init(&w, out, cap);
    qn_cobs_w_put(&w, in, n);
    return qn_cobs_w_end(&w);
}

size_t qn_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0;

    /* In place (in == out) is safe: every block writes at most as many bytes as it reads, and
     * the implied 0x00 lands where the block's code byte was, so o <= i holds throughout. */
    while (i < n) {
        size_t run, k;
        uint8_t code = in[i++];
        if (code == 0)
            return SIZE_MAX;             /* a delimiter inside a frame */
        run = (size_t)code - 1u;
        if (run > n - i || run > cap - o)
            return SIZE_MAX;             /* the block claims more bytes than there are / fit */
        for (k = 0; k < run; k++) {
            uint8_t b = in[i++];
            if (b == 0)
                return SIZE_MAX;
            out[o++] = b;
        }
        /* Every block but a full one and the last ends with an implied 0x00. Accepting a
         * trailing empty block (..., FF, <254 bytes>, 01) as well is harmless: it decodes to
         * the same bytes, and encoders of the other COBS variant write it. */
        if (code != 0xFF && i < n) {
            if (o >= cap)
                return SIZE_MAX;
            out[o++] = 0;
        }
    }
    return o;
}
