/* The CBOR subset of the wire protocol (docs/protocol.md): deterministic encoding (shortest
 * integers, definite lengths), unsigned/negative ints, byte and text strings, arrays, maps,
 * tag 17, float32, booleans. Writer and a bounds-checked reader; no malloc. */
#ifndef QNODE_CBOR_H
#define QNODE_CBOR_H
#include <stddef.h>
#include <stdint.h>

#define QN_CBOR_MAX_DEPTH 4   /* nesting levels of arrays, maps and tags (docs/protocol.md) */

typedef struct {
    uint8_t *p;
    size_t cap;
    size_t len;
    int err;             /* set when cap was exceeded; later writes do nothing */
} qn_cbor_w;

/* buf == NULL makes a counting writer: len says how many bytes the writes would take, and
 * err stays 0 (used to learn a payload's length before writing its bstr head). */
void qn_cbor_w_init(qn_cbor_w *w, uint8_t *buf, size_t cap);
void qn_cbor_head(qn_cbor_w *w, uint8_t major, uint64_t value);   /* major 0..7 */
void qn_cbor_uint(qn_cbor_w *w, uint64_t v);
void qn_cbor_int(qn_cbor_w *w, int64_t v);                        /* major 0 or 1 */
void qn_cbor_bstr(qn_cbor_w *w, const void *p, size_t n);
void qn_cbor_tstr(qn_cbor_w *w, const char *s, size_t n);
void qn_cbor_f32(qn_cbor_w *w, float v);                          /* always FA + 4 bytes */
void qn_cbor_bool(qn_cbor_w *w, int v);
void qn_cbor_raw(qn_cbor_w *w, const void *p, size_t n);

typedef struct {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
} qn_cbor_r;

typedef struct {
    uint8_t major;
    uint8_t ai;            /* additional information: tells false (20) / true (21) from float32 (26) */
    uint64_t value;        /* int value, length, count or tag; bool: 0/1; float32: its bits */
    const uint8_t *data;   /* bstr / tstr content */
} qn_cbor_item;

void qn_cbor_r_init(qn_cbor_r *r, const uint8_t *p, size_t n);
/* Read one item head (and the string content for bstr/tstr). 0 on success, -1 on error
 * (truncated, indefinite length, non-shortest integer, unsupported simple value, a string,
 * array or map longer than the bytes left). Errors are sticky. */
int qn_cbor_next(qn_cbor_r *r, qn_cbor_item *it);
/* Skip one whole item (nested up to 4 levels), checking it as qn_cbor_check does; tags are
 * allowed anywhere. */
int qn_cbor_skip(qn_cbor_r *r);
/* 0 if p[0..n) is exactly one item of the protocol's subset, -1 otherwise: well-formed heads
 * as above, at most 4 levels, map keys unsigned and strictly ascending, text strings valid
 * UTF-8, nothing after the item, and no tag except top_tag (>= 0) around the whole item. */
int qn_cbor_check(const uint8_t *p, size_t n, int32_t top_tag);

#endif
