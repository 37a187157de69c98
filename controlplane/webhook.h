/*
 * webhook — alerts POSTed as JSON to the operator's URL ([qos] webhook),
 * from the control plane's epoll loop: one connection per attempt
 * (non-blocking connect, the request in one send, the status line read),
 * each attempt bounded by webhook_timeout, a failed one retried
 * webhook_retries times 1 s, 2 s, 4 s ... apart.  An unreachable webhook
 * never delays anything: alerts wait in a bounded queue (the oldest is
 * dropped and counted when it is full), and the QoS decisions they report
 * have been made already.
 *
 * Single-threaded (the control plane's loop); owns its sockets.
 */
#ifndef SLUICE_WEBHOOK_H
#define SLUICE_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

struct config;

#define WEBHOOK_QUEUE 32

struct webhook {
    int ep;
    const struct config *cfg;
    int fd;
    uint8_t state; /* idle, connecting, reading */
    uint64_t deadline_ms;
    uint64_t next_ms;           /* when the head of the queue may be tried (backoff) */
    char *queue[WEBHOOK_QUEUE]; /* JSON bodies, oldest first */
    unsigned head, len;
    unsigned attempts; /* of the head */
    char buf[64];
    unsigned blen;
    uint64_t sent, failed, dropped; /* delivered (2xx), given up, pushed out of a full queue */
};

void webhook_init(struct webhook *h, int ep, const struct config *cfg);
/* Queues <json> (copied); nothing when no webhook is configured. */
void webhook_post(struct webhook *h, const char *json);
bool webhook_owns(const struct webhook *h, const void *tag);
void webhook_on_event(struct webhook *h);
void webhook_poll(struct webhook *h, uint64_t now_ms);
void webhook_close(struct webhook *h);

#endif
