/* Wire protocol v1 for nodes (docs/protocol.md is normative): topics, the round
 * announcement and model chunks (decode), update chunks (encode, sealed with the node's
 * HMAC key as COSE_Mac0; decode + verify for mesh mode). Q16.16 only: nodes run the
 * fixed-point contract. All sizes bounded; no malloc. */
#ifndef QNODE_WIRE_H
#define QNODE_WIRE_H
#include <stddef.h>
#include <stdint.h>

#define QN_ID_MAX 64
/* What a node keeps of a ROUND. The protocol allows up to 64 layout entries and 64-character
 * methods; a ROUND beyond these build-time limits is refused with QN_E_RANGE. */
#ifndef QN_LAYOUT_MAX
#define QN_LAYOUT_MAX 8
#endif
#ifndef QN_METHOD_MAX
#define QN_METHOD_MAX 32
#endif
#define QN_MAX_MESSAGE 16384u          /* the protocol's default message limit */

typedef enum {
    QN_OK = 0,
    QN_E_MALFORMED = -1,     /* not the CBOR the spec defines: rules of section 3, missing or
                                unknown keys, a field of the wrong CBOR type, a bad id */
    QN_E_VERSION = -2,
    QN_E_TYPE = -3,
    QN_E_RANGE = -4,         /* a field outside its limits: the protocol's, or this node's
                                (uint32 fields, QN_LAYOUT_MAX, QN_METHOD_MAX, QN_MAX_MESSAGE) */
    QN_E_SPACE = -5,         /* the output buffer is too small */
    QN_E_TAG = -6,           /* HMAC mismatch */
    QN_E_ROUND = -7          /* qn_update_check: an update for another round (normal, not bad) */
} qn_status;

typedef struct {
    char fleet[QN_ID_MAX + 1];
    uint32_t round, version, deadline, chunk_elements, quorum, elements, model_chunks;
    uint8_t digest[32];
    char method[QN_METHOD_MAX + 1];
    uint8_t mode;                        /* 0 q16_16, 1 float32 */
    uint32_t layout[QN_LAYOUT_MAX];      /* entries are 1 .. 2^24 */
    uint8_t n_layout;
} qn_round;

typedef struct {
    char fleet[QN_ID_MAX + 1];
    uint32_t version, index, count, elements;
    uint8_t digest[32];
    uint8_t encoding;                    /* 0 Q16, 1 F32 */
    const uint8_t *data;                 /* points into the decoded message */
    size_t data_len;
} qn_model_chunk;

typedef struct {
    char fleet[QN_ID_MAX + 1];
    char node[QN_ID_MAX + 1];
    uint32_t round, index, count, elements, samples;
    uint8_t encoding;
    uint8_t has_scale;                   /* key 10 was present (I8 only) */
    uint32_t scale_bits;                 /* its float32 bits */
    const uint8_t *data;                 /* points into the message */
    size_t data_len;
    const uint8_t *payload;              /* the signed payload inside the envelope */
    size_t payload_len;
    const uint8_t *tag;                  /* 32 bytes */
} qn_update_chunk;

int qn_valid_id(const char *s);          /* [A-Za-z0-9_-]{1,64} */

/* "qora/v1/{fleet}/{kind}[/{node-or-chunk}]" NUL-terminated; returns the length (without the
 * NUL), or 0 if cap is too small or the topic would break section 2 (bad id, unknown kind,
 * a leaf missing for model/update/status or given for round/ledger, a chunk that is not
 * 0..65534 in decimal without leading zeros). */
size_t qn_topic(char *out, size_t cap, const char *fleet, const char *kind, const char *leaf);

enum { QN_TOPIC_ROUND = 1, QN_TOPIC_MODEL, QN_TOPIC_UPDATE, QN_TOPIC_STATUS, QN_TOPIC_LEDGER };
/* Classify a topic of `fleet` (len bytes, no NUL needed): QN_TOPIC_* or 0 if it is not a
 * valid protocol topic of that fleet. Model: *chunk = the index; update / status: *leaf and
 * *leaf_len = the node id inside topic. chunk, leaf and leaf_len may be NULL. */
int qn_topic_parse(const char *topic, size_t len, const char *fleet, uint32_t *chunk,
                   const char **leaf, size_t *leaf_len);

int qn_round_decode(const uint8_t *msg, size_t n, qn_round *out);
int qn_model_chunk_decode(const uint8_t *msg, size_t n, qn_model_chunk *out);

/* One sealed update chunk with Q16 values (values = this chunk's elements, little-endian
 * int32 on the wire). Returns the message length, or 0 if cap is too small / arguments
 * are out of range. Byte-identical to qora.protocol.make_update. */
size_t qn_update_encode(uint8_t *out, size_t cap, const char *fleet, const char *node,
                        uint32_t round, uint32_t index, uint32_t count, uint32_t elements,
                        uint32_t samples, const int32_t *values, size_t n_values,
                        const uint8_t key[32]);

/* Decode an envelope + payload (no key check); then verify its tag with a key. Decoding
 * checks CBOR types only, as qora.protocol's decode_update does; qn_update_check then checks
 * the values against the round (mesh mode). */
int qn_update_decode(const uint8_t *msg, size_t n, qn_update_chunk *out);
int qn_update_verify(const qn_update_chunk *c, const uint8_t key[32]);
/* qora.protocol.check_update for a q16_16 round: QN_E_ROUND for another round, QN_E_RANGE
 * for bad chunk numbering, shape, encoding (Q16 without scale only) or samples. */
int qn_update_check(const qn_update_chunk *c, const qn_round *r);

/* Status message {0:1, 1:4, 2:fleet, 3:node, 19:online}. */
size_t qn_status_encode(uint8_t *out, size_t cap, const char *fleet, const char *node, int online);

/* The content of a HELLO frame (docs/serial.md): {0: 1, 2: fleet, 3: node, 25: firmware},
 * firmware 1..64 printable ASCII characters without spaces. Length, or 0. */
size_t qn_hello_encode(uint8_t *out, size_t cap, const char *fleet, const char *node,
                       const char *firmware);

/* Little-endian int32 helpers (the wire's tensor byte order on any host). */
int32_t qn_le32(const uint8_t *p);
void qn_put_le32(uint8_t *p, int32_t v);

#endif
