/* Unity tests of the node core on the host: `pio test -e native` (platformio.ini).
 * A few basics of each part the boards rely on; the full vector suites are the pytest files
 * under tests/firmware/, run by CI against the same sources. */
#include <string.h>

#include <unity.h>

#include "qnode/frame.h"
#include "qnode/hash.h"
#include "qnode/node.h"
#include "qnode/train.h"
#include "qnode/wire.h"

void setUp(void) {}
void tearDown(void) {}

static void unhex(uint8_t *out, const char *hex) {
    for (size_t i = 0; hex[2 * i]; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + (size_t)k];
            v = v * 16u + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
}

/* ---- hash ----------------------------------------------------------------------------------- */
static void test_sha256_of_abc_is_the_fips_180_vector(void) {
    uint8_t d[32], want[32];
    qn_sha256("abc", 3, d);
    unhex(want, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    TEST_ASSERT_EQUAL_UINT8_ARRAY(want, d, 32);
}

static void test_hmac_sha256_matches_rfc4231_case_1(void) {
    uint8_t key[20], mac[32], want[32];
    memset(key, 0x0b, sizeof key);
    qn_hmac_sha256(key, sizeof key, "Hi There", 8, mac);
    unhex(want, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    TEST_ASSERT_EQUAL_UINT8_ARRAY(want, mac, 32);
    TEST_ASSERT_EQUAL_INT(1, qn_equal32(mac, want));
    mac[31] ^= 1u;
    TEST_ASSERT_EQUAL_INT(0, qn_equal32(mac, want));
}

/* ---- frame ---------------------------------------------------------------------------------- */
static uint8_t g_line[QN_FRAME_MAX_ENCODED(512u)];
static uint8_t g_rxbuf[QN_FRAME_MAX_ENCODED(512u)];

static void test_publish_frame_round_trips_through_the_receiver(void) {
    const uint8_t payload[] = {0x00, 0xA1, 0x00, 0xFF, 0x00};
    size_t n = qn_frame_publish(g_line, sizeof g_line, "qora/v1/f/round", 15, payload, sizeof payload);
    TEST_ASSERT_TRUE(n > 0);
    TEST_ASSERT_EQUAL_UINT8(0, g_line[n - 1]);
    for (size_t i = 0; i + 1 < n; i++) TEST_ASSERT_NOT_EQUAL(0, g_line[i]);   /* COBS: no 0x00 inside */

    qn_frame_rx rx;
    qn_frame_rx_init(&rx, g_rxbuf, sizeof g_rxbuf);
    int st = 0;
    for (size_t i = 0; i < n; i++) st = qn_frame_rx_byte(&rx, g_line[i]);
    TEST_ASSERT_EQUAL_INT(1, st);
    TEST_ASSERT_EQUAL_UINT8(QN_FRAME_PUBLISH, rx.type);
    const char *topic;
    const uint8_t *p;
    size_t tl, pl;
    TEST_ASSERT_EQUAL_INT(0, qn_frame_publish_parse(rx.content, rx.content_len, &topic, &tl, &p, &pl));
    TEST_ASSERT_EQUAL_size_t(15, tl);
    TEST_ASSERT_EQUAL_MEMORY("qora/v1/f/round", topic, 15);
    TEST_ASSERT_EQUAL_size_t(sizeof payload, pl);
    TEST_ASSERT_EQUAL_MEMORY(payload, p, sizeof payload);
}

static void test_a_corrupted_frame_is_dropped_and_the_next_one_is_received(void) {
    const uint8_t payload[] = {1, 2, 3};
    size_t n = qn_frame_publish(g_line, sizeof g_line, "t", 1, payload, sizeof payload);
    qn_frame_rx rx;
    qn_frame_rx_init(&rx, g_rxbuf, sizeof g_rxbuf);
    int st = 0;
    for (size_t i = 0; i < n; i++) st = qn_frame_rx_byte(&rx, (uint8_t)(i == 3 ? g_line[i] ^ 0x40u : g_line[i]));
    TEST_ASSERT_EQUAL_INT(-1, st);
    TEST_ASSERT_EQUAL_UINT32(1, rx.crc_errors + rx.cobs_errors);
    for (size_t i = 0; i < n; i++) st = qn_frame_rx_byte(&rx, g_line[i]);
    TEST_ASSERT_EQUAL_INT(1, st);
}

/* ---- wire ----------------------------------------------------------------------------------- */
static void test_topics_follow_section_2(void) {
    char t[96];
    TEST_ASSERT_EQUAL_size_t(18, qn_topic(t, sizeof t, "f", "update", "n"));
    TEST_ASSERT_EQUAL_STRING("qora/v1/f/update/n", t);
    TEST_ASSERT_EQUAL_size_t(0, qn_topic(t, sizeof t, "f", "round", "n"));   /* round has no leaf */
    TEST_ASSERT_EQUAL_size_t(0, qn_topic(t, sizeof t, "bad id", "round", NULL));
}

static void test_a_sealed_update_decodes_and_verifies_only_with_its_key(void) {
    static uint8_t msg[512];
    uint8_t key[32];
    memset(key, 7, sizeof key);
    const int32_t values[3] = {65536, -1, 0x7FFFFFFF};
    size_t n = qn_update_encode(msg, sizeof msg, "f", "n", 4, 0, 1, 3, 40, values, 3, key);
    TEST_ASSERT_TRUE(n > 0);
    qn_update_chunk u;
    TEST_ASSERT_EQUAL_INT(QN_OK, qn_update_decode(msg, n, &u));
    TEST_ASSERT_EQUAL_STRING("n", u.node);
    TEST_ASSERT_EQUAL_UINT32(4, u.round);
    TEST_ASSERT_EQUAL_UINT32(3, u.elements);
    TEST_ASSERT_EQUAL_UINT32(40, u.samples);
    TEST_ASSERT_EQUAL_size_t(12, u.data_len);
    TEST_ASSERT_EQUAL_INT32(-1, qn_le32(u.data + 4));
    TEST_ASSERT_EQUAL_INT(QN_OK, qn_update_verify(&u, key));
    key[0] ^= 1u;
    TEST_ASSERT_EQUAL_INT(QN_E_TAG, qn_update_verify(&u, key));
}

/* ---- train ---------------------------------------------------------------------------------- */
static void test_softmax_shape_has_650_parameters(void) {
    const uint16_t sizes[] = {64, 10};
    qn_shape s = {sizes, 2};
    TEST_ASSERT_EQUAL_size_t(650, qn_n_params(&s));
    const uint16_t mlp[] = {64, 32, 10};
    qn_shape m = {mlp, 3};
    TEST_ASSERT_EQUAL_size_t(2410, qn_n_params(&m));
}

static void test_node_order_is_a_permutation(void) {
    uint32_t order[40];
    uint8_t seen[40] = {0};
    qn_node_order(1234u, order, 40);
    for (int i = 0; i < 40; i++) {
        TEST_ASSERT_TRUE(order[i] < 40u);
        seen[order[i]]++;
    }
    for (int i = 0; i < 40; i++) TEST_ASSERT_EQUAL_UINT8(1, seen[i]);
}

static void test_one_sgd_step_moves_the_true_class_up(void) {
    /* 2 features -> 2 classes, zero weights: the step raises the bias of the label's class */
    const uint16_t sizes[] = {2, 2};
    qn_shape s = {sizes, 2};
    int32_t params[6] = {0};
    const int32_t X[2] = {65536, 0};
    const uint8_t y[1] = {1};
    const uint32_t idx[1] = {0};
    static uint64_t scratch[256];
    TEST_ASSERT_EQUAL_INT(0, qn_sgd_step(params, &s, X, y, idx, 1, 32768, scratch, sizeof scratch));
    TEST_ASSERT_TRUE(params[5] > 0);     /* b[1] */
    TEST_ASSERT_TRUE(params[4] < 0);     /* b[0] */
    TEST_ASSERT_EQUAL_INT32(-params[4], params[5]);
}

/* ---- config --------------------------------------------------------------------------------- */
static void test_a_blob_without_the_magic_is_refused(void) {
    static qn_config cfg;
    const uint8_t junk[64] = {'Q', 'N', 'C', 'X'};
    TEST_ASSERT_TRUE(qn_config_parse(&cfg, junk, sizeof junk) < 0);
}

int main(void) {
    UNITY_BEGIN();
    RUN_TEST(test_sha256_of_abc_is_the_fips_180_vector);
    RUN_TEST(test_hmac_sha256_matches_rfc4231_case_1);
    RUN_TEST(test_publish_frame_round_trips_through_the_receiver);
    RUN_TEST(test_a_corrupted_frame_is_dropped_and_the_next_one_is_received);
    RUN_TEST(test_topics_follow_section_2);
    RUN_TEST(test_a_sealed_update_decodes_and_verifies_only_with_its_key);
    RUN_TEST(test_softmax_shape_has_650_parameters);
    RUN_TEST(test_node_order_is_a_permutation);
    RUN_TEST(test_one_sgd_step_moves_the_true_class_up);
    RUN_TEST(test_a_blob_without_the_magic_is_refused);
    return UNITY_END();
}
