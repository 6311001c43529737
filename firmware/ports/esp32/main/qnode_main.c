/* The node on an ESP32 (ESP-IDF 5.x): Wi-Fi station + esp-mqtt speaking the protocol directly
 * (docs/protocol.md section 9), NVS for the persistent state, the config blob read in place from
 * the `qnode` flash partition (partitions.csv). The node logic is the portable core, unchanged:
 * its "UART" is mqtt_link.c, which turns MQTT messages into the PUBLISH frames a gateway would
 * send and the core's frames back into publishes.
 *
 * Tasks: esp-mqtt's task runs mqtt_event() and pushes frames into a stream buffer; the main
 * task runs the node (qn_node_poll), reads that stream buffer as its UART and publishes from
 * uart_write. Nothing else is shared between them.
 *
 * Wi-Fi and broker settings come from menuconfig (main/Kconfig.projbuild, sdkconfig.defaults);
 * the node id, fleet and key come from the config blob, as on every other board:
 *   esptool.py write_flash 0x190000 node.blob      (the `qnode` partition, partitions.csv) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esp_event.h"
#include "esp_log.h"
#include "esp_netif.h"
#include "esp_partition.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "esp_wifi.h"
#include "freertos/FreeRTOS.h"
#include "freertos/stream_buffer.h"
#include "freertos/task.h"
#include "mqtt_client.h"
#include "mqtt_link.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "qnode/node.h"

static const char *TAG = "qnode";

#define FRAME_CAP QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)   /* any frame of docs/serial.md */
/* what the core writes: an update chunk (at most 4 KiB of values plus its envelope, node.c's
 * TX_CONTENT_MAX), a HELLO or a LOG line; 8 KiB content leaves room to spare */
#define UP_FRAME_CAP QN_FRAME_MAX_ENCODED(8192u)
#define DOWN_STREAM_BYTES 8192u
#define DOWN_PIECE 2048u                        /* frames enter the stream buffer in pieces */

static qn_config g_cfg;
static qn_node g_node;
static esp_mqtt_client_handle_t g_mqtt;
static StreamBufferHandle_t g_down;             /* frames for the node (MQTT task -> node task) */
static qm_reasm g_reasm;                        /* MQTT task only */
static uint8_t *g_down_frame;                   /* MQTT task only */
static qm_uplink g_up;                          /* node task only */
static char g_client_id[2 * QN_ID_MAX + 2];
static char g_status_topic[2 * QN_ID_MAX + 32];
static uint8_t g_offline[96], g_online[96];
static size_t g_offline_len, g_online_len;

/* ---- the HAL: the node task's side ------------------------------------------------------- */
static uint8_t g_cache[256];
static size_t g_cache_len, g_cache_pos;

static int uart_read(void *ctx) {
    (void)ctx;
    if (g_cache_pos == g_cache_len) {
        g_cache_len = xStreamBufferReceive(g_down, g_cache, sizeof g_cache, 0);
        g_cache_pos = 0;
        if (g_cache_len == 0) return -1;
    }
    return g_cache[g_cache_pos++];
}

static void uart_write(void *ctx, const uint8_t *p, size_t n) {
    (void)ctx;
    qm_uplink_write(&g_up, p, n);
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    return (uint32_t)(esp_timer_get_time() / 1000);
}

static int load(void *ctx, void *buf, size_t n) {
    (void)ctx;
    nvs_handle_t h;
    if (nvs_open("qnode", NVS_READONLY, &h) != ESP_OK) return -1;
    size_t len = n;
    esp_err_t err = nvs_get_blob(h, "state", buf, &len);
    nvs_close(h);
    return err == ESP_OK && len == n ? 0 : -1;
}

static int save(void *ctx, const void *buf, size_t n) {
    (void)ctx;
    nvs_handle_t h;
    if (nvs_open("qnode", NVS_READWRITE, &h) != ESP_OK) return -1;
    /* NVS writes the new entry before erasing the old one: a reset leaves one of the two */
    esp_err_t err = nvs_set_blob(h, "state", buf, n);
    if (err == ESP_OK) err = nvs_commit(h);
    nvs_close(h);
    return err == ESP_OK ? 0 : -1;
}

static const qn_hal g_hal = {NULL, uart_read, uart_write, millis, load, save};

/* ---- upward: what the node publishes ------------------------------------------------------ */
static void up_publish(void *ctx, const char *topic, const uint8_t *payload, size_t n) {
    (void)ctx;
    /* QoS 1, not retained (docs/protocol.md section 9, step 7); while disconnected esp-mqtt
     * keeps QoS 1 messages in its outbox and sends them after reconnecting */
    if (esp_mqtt_client_publish(g_mqtt, topic, (const char *)payload, (int)n, 1, 0) < 0)
        ESP_LOGW(TAG, "publish to %s failed", topic);
}

static void up_log(void *ctx, const char *text, size_t n) {
    (void)ctx;
    ESP_LOGI(TAG, "%.*s", (int)n, text);
}

/* ---- downward: esp-mqtt's task ------------------------------------------------------------ */
static void subscribe_all(esp_mqtt_client_handle_t c) {
    char topic[2 * QN_ID_MAX + 32];
    static const char *const kinds[] = {"round", "model/+", "update/+"};
    int n = g_cfg.mesh_n ? 3 : 2;          /* mesh mode: the neighbours' updates too */
    for (int i = 0; i < n; i++) {
        snprintf(topic, sizeof topic, "qora/v1/%s/%s", g_cfg.fleet, kinds[i]);
        esp_mqtt_client_subscribe(c, topic, 1);
    }
}

static void mqtt_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
    (void)arg;
    (void)base;
    esp_mqtt_event_handle_t ev = data;
    switch ((esp_mqtt_event_id_t)id) {
    case MQTT_EVENT_CONNECTED:
        ESP_LOGI(TAG, "broker connected");
        esp_mqtt_client_publish(ev->client, g_status_topic, (const char *)g_online, (int)g_online_len, 1, 1);
        subscribe_all(ev->client);         /* retained ROUND and MODEL chunks follow */
        break;
    case MQTT_EVENT_DISCONNECTED:
        ESP_LOGW(TAG, "broker disconnected; esp-mqtt reconnects");
        break;
    case MQTT_EVENT_DATA: {
        int st = qm_reasm_feed(&g_reasm, ev->topic, ev->topic ? (size_t)ev->topic_len : 0,
                               (const uint8_t *)ev->data, (size_t)ev->data_len,
                               (size_t)ev->current_data_offset, (size_t)ev->total_data_len);
        if (st != 1) break;
        size_t k = qm_reasm_frame(&g_reasm, g_down_frame, FRAME_CAP);
        /* in pieces the stream buffer can take, waiting while the node trains */
        for (size_t sent = 0; k && sent < k;) {
            size_t piece = k - sent < DOWN_PIECE ? k - sent : DOWN_PIECE;
            size_t m = xStreamBufferSend(g_down, g_down_frame + sent, piece, pdMS_TO_TICKS(30000));
            if (m == 0) {
                ESP_LOGW(TAG, "node not reading: frame dropped");
                break;
            }
            sent += m;
        }
        break;
    }
    default:
        break;
    }
}

/* ---- Wi-Fi -------------------------------------------------------------------------------- */
static void wifi_event(void *arg, esp_event_base_t base, int32_t id, void *data) {
    (void)arg;
    (void)data;
    if (base == WIFI_EVENT && (id == WIFI_EVENT_STA_START || id == WIFI_EVENT_STA_DISCONNECTED))
        esp_wifi_connect();                /* and retry for as long as it takes */
    else if (base == IP_EVENT && id == IP_EVENT_STA_GOT_IP)
        ESP_LOGI(TAG, "Wi-Fi up");
}

static void wifi_start(void) {
    ESP_ERROR_CHECK(esp_netif_init());
    ESP_ERROR_CHECK(esp_event_loop_create_default());
    esp_netif_create_default_wifi_sta();
    wifi_init_config_t init = WIFI_INIT_CONFIG_DEFAULT();
    ESP_ERROR_CHECK(esp_wifi_init(&init));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(WIFI_EVENT, ESP_EVENT_ANY_ID, wifi_event, NULL, NULL));
    ESP_ERROR_CHECK(esp_event_handler_instance_register(IP_EVENT, IP_EVENT_STA_GOT_IP, wifi_event, NULL, NULL));
    wifi_config_t wc;
    memset(&wc, 0, sizeof wc);
    strlcpy((char *)wc.sta.ssid, CONFIG_QNODE_WIFI_SSID, sizeof wc.sta.ssid);
    strlcpy((char *)wc.sta.password, CONFIG_QNODE_WIFI_PASSWORD, sizeof wc.sta.password);
    ESP_ERROR_CHECK(esp_wifi_set_mode(WIFI_MODE_STA));
    ESP_ERROR_CHECK(esp_wifi_set_config(WIFI_IF_STA, &wc));
    ESP_ERROR_CHECK(esp_wifi_start());
}

/* ---- boot --------------------------------------------------------------------------------- */
static const uint8_t *map_config(size_t *size) {
    /* type 0x40: the first application-defined partition type (partitions.csv) */
    const esp_partition_t *p = esp_partition_find_first((esp_partition_type_t)0x40, ESP_PARTITION_SUBTYPE_ANY, "qnode");
    const void *ptr = NULL;
    esp_partition_mmap_handle_t handle;
    if (!p || esp_partition_mmap(p, 0, p->size, ESP_PARTITION_MMAP_DATA, &ptr, &handle) != ESP_OK) return NULL;
    *size = p->size;
    return ptr;                            /* mapped for good: the shard is read in place */
}

void app_main(void) {
    esp_err_t err = nvs_flash_init();
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND) {
        ESP_ERROR_CHECK(nvs_flash_erase());
        err = nvs_flash_init();
    }
    ESP_ERROR_CHECK(err);

    size_t size = 0;
    const uint8_t *blob = map_config(&size);
    int st = blob ? qn_config_parse(&g_cfg, blob, size) : -1;
    if (st != 0) {
        ESP_LOGE(TAG, "no valid config blob in the 'qnode' partition (error %d): "
                      "esptool.py write_flash 0x190000 node.blob", st);
        for (;;) vTaskDelay(pdMS_TO_TICKS(10000));
    }

    /* the link's big buffers come from the heap: the ESP32's static DRAM is the scarce part */
    uint8_t *msg = malloc(QN_FRAME_MAX_PAYLOAD);
    uint8_t *up = malloc(UP_FRAME_CAP);
    g_down_frame = malloc(FRAME_CAP);
    g_down = xStreamBufferCreate(DOWN_STREAM_BYTES, 1);
    if (!msg || !up || !g_down_frame || !g_down) {
        ESP_LOGE(TAG, "out of memory");
        abort();
    }
    qm_reasm_init(&g_reasm, msg, QN_FRAME_MAX_PAYLOAD);
    qm_uplink_cb cb = {NULL, up_publish, up_log};
    qm_uplink_init(&g_up, up, UP_FRAME_CAP - 1, g_cfg.fleet, g_cfg.node, cb);

    snprintf(g_client_id, sizeof g_client_id, "%s-%s", g_cfg.fleet, g_cfg.node);
    qn_topic(g_status_topic, sizeof g_status_topic, g_cfg.fleet, "status", g_cfg.node);
    g_online_len = qn_status_encode(g_online, sizeof g_online, g_cfg.fleet, g_cfg.node, 1);
    g_offline_len = qn_status_encode(g_offline, sizeof g_offline, g_cfg.fleet, g_cfg.node, 0);

    wifi_start();
    /* docs/protocol.md section 9, step 1: username = node id, client id {fleet}-{node}, the
     * offline STATUS as retained QoS 1 will */
    esp_mqtt_client_config_t mc = {
        .broker.address.uri = CONFIG_QNODE_MQTT_URI,
        .credentials.username = g_cfg.node,
        .credentials.client_id = g_client_id,
        .credentials.authentication.password = CONFIG_QNODE_MQTT_PASSWORD,
        .session.last_will.topic = g_status_topic,
        .session.last_will.msg = (const char *)g_offline,
        .session.last_will.msg_len = (int)g_offline_len,
        .session.last_will.qos = 1,
        .session.last_will.retain = 1,
        .buffer.size = 4096,               /* longer messages come in pieces: qm_reasm */
    };
    g_mqtt = esp_mqtt_client_init(&mc);
    esp_mqtt_client_register_event(g_mqtt, ESP_EVENT_ANY_ID, mqtt_event, NULL);
    ESP_ERROR_CHECK(esp_mqtt_client_start(g_mqtt));

    qn_node_init(&g_node, &g_hal, &g_cfg);
    ESP_LOGI(TAG, "node %s of fleet %s running", g_cfg.node, g_cfg.fleet);
    for (;;) {
        (void)qn_node_poll(&g_node);
        if (g_cache_pos == g_cache_len && xStreamBufferIsEmpty(g_down))
            vTaskDelay(pdMS_TO_TICKS(5));  /* idle: let the idle task feed the watchdog */
    }
}
