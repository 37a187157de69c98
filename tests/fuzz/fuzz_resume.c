/*
 * libFuzzer target for the resume path's handling of outside bytes:
 * dataplane/resume_id (the stream id in GET /v1/streams/<id>, the client's
 * Last-Event-ID), each checked against a reference written another way
 * (strtoull, explicit grammar), and dataplane/event_log (the records a
 * resume replays), driven by the input through appends, evictions, growth,
 * resets and reads, against a plain array model.  Any disagreement aborts.
 *
 * Input: byte 0 splits the rest into the request part (a path, then a
 * Last-Event-ID value) and the event-log program.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/event_log.h"
#include "dataplane/resume_id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool hex_lower(char c)
{
    return strchr("0123456789abcdef", c) && c;
}

static void check_path(const char *p, size_t n, char id[RESUME_ID_LEN + 1])
{
    int rc = resume_id_from_path(p, n, id);
    /* reference: the grammar spelled out */
    static const char pre[] = "/v1/streams/";
    bool ok = n >= 12 + 16 && memcmp(p, pre, 12) == 0;
    for (size_t i = 12; ok && i < 28; i++)
        ok = hex_lower(p[i]);
    if (ok && n > 28) {
        size_t k = 28;
        if (p[k] == '/')
            k++;
        ok = k == n || p[k] == '?';
    }
    CHECK((rc == 0) == ok);
    if (rc == 0) {
        CHECK(strlen(id) == RESUME_ID_LEN);
        CHECK(memcmp(id, p + 12, RESUME_ID_LEN) == 0);
    } else {
        memcpy(id, "0123456789abcdef", RESUME_ID_LEN + 1);
    }
}

static void check_last_event(const char *v, size_t n, const char *id)
{
    uint64_t seq = 0;
    int rc = resume_id_last_event(v, n, id, &seq);
    /* reference: trim, split at the colon, strtoull on a copy */
    size_t a = 0, b = n;
    while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
        b--;
    bool ok = b - a > RESUME_ID_LEN + 1 && memcmp(v + a, id, RESUME_ID_LEN) == 0 &&
              v[a + RESUME_ID_LEN] == ':';
    uint64_t want = 0;
    if (ok) {
        size_t d0 = a + RESUME_ID_LEN + 1;
        for (size_t i = d0; ok && i < b; i++)
            ok = v[i] >= '0' && v[i] <= '9';
        if (ok) {
            char buf[64];
            size_t len = b - d0;
            /* leading zeros do not count toward the range */
            while (len > 1 && v[d0] == '0') {
                d0++;
                len--;
            }
            if (len > 20) {
                ok = false;
            } else {
                memcpy(buf, v + d0, len);
                buf[len] = '\0';
                errno = 0;
                unsigned long long x = strtoull(buf, NULL, 10);
                ok = errno == 0 && x < UINT64_MAX;
                want = x;
            }
        }
    }
    CHECK((rc == 0) == ok);
    if (ok) {
        CHECK(seq == want);
        char again[64];
        int k = snprintf(again, sizeof again, "%s:%llu", id, (unsigned long long)seq);
        uint64_t seq2 = 0;
        CHECK(resume_id_last_event(again, (size_t)k, id, &seq2) == 0 && seq2 == seq);
    }
}

#define MODEL_MAX 512

struct model {
    uint64_t first; /* seq of rec[0] */
    size_t n;
    uint16_t len[MODEL_MAX];
    uint8_t fill[MODEL_MAX];
};

static void check_record(const struct elog *l, const struct model *m, uint64_t seq)
{
    uint64_t pos;
    int rc = elog_find(l, seq, &pos);
    bool exists = seq >= m->first && seq <= m->first + m->n;
    CHECK((rc == 0) == exists);
    if (!exists || seq == m->first + m->n)
        return;
    const char *p1, *p2;
    size_t n1, n2;
    size_t i = (size_t)(seq - m->first);
    elog_read(l, pos, &p1, &n1, &p2, &n2);
    CHECK(n1 + n2 == m->len[i]);
    for (size_t k = 0; k < n1; k++)
        CHECK((uint8_t)p1[k] == (uint8_t)(m->fill[i] + k));
    for (size_t k = 0; k < n2; k++)
        CHECK((uint8_t)p2[k] == (uint8_t)(m->fill[i] + n1 + k));
}

static void run_log(const uint8_t *p, size_t n)
{
    struct elog l;
    elog_init(&l, 1);
    static struct model m;
    memset(&m, 0, sizeof m);
    m.first = 1;
    uint8_t rec[1024];
    for (size_t i = 0; i + 1 < n; i += 2) {
        uint8_t op = p[i], arg = p[i + 1];
        switch (op % 5) {
        case 0: { /* append a record of arg * 3 bytes */
            size_t len = (size_t)arg * 3;
            if (!elog_fits(&l, len) || m.n == MODEL_MAX)
                break;
            for (size_t k = 0; k < len; k++)
                rec[k] = (uint8_t)(op + k);
            elog_push(&l, (const char *)rec, len);
            m.len[m.n] = (uint16_t)len;
            m.fill[m.n] = op;
            m.n++;
            break;
        }
        case 1: /* evict */
            CHECK(elog_evict(&l) == (m.n > 0));
            if (m.n) {
                memmove(m.len, m.len + 1, (m.n - 1) * sizeof m.len[0]);
                memmove(m.fill, m.fill + 1, (m.n - 1) * sizeof m.fill[0]);
                m.n--;
                m.first++;
            }
            break;
        case 2: /* grow (any size, not only powers of two) */
            CHECK(elog_grow(&l, (uint32_t)arg * 13 + l.cap) == 0);
            break;
        case 3: /* read one */
            check_record(&l, &m, m.first + arg % (m.n + 3) - (m.first > 1 ? 1 : 0));
            break;
        case 4: /* lose everything before */
            if (arg < 16) {
                uint64_t next = l.next_seq + (arg & 1);
                elog_reset(&l, next);
                m.n = 0;
                m.first = next;
            }
            break;
        }
        CHECK(l.first_seq == m.first && l.next_seq == m.first + m.n);
        CHECK(elog_used(&l) <= l.cap);
    }
    for (uint64_t s = m.first; s <= m.first + m.n; s++)
        check_record(&l, &m, s);
    elog_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] < size - 1 ? data[0] : size - 1;
    const char *req = (const char *)data + 1;
    char id[RESUME_ID_LEN + 1];
    /* the request part: a path up to the first newline, a value after it */
    const char *nl = memchr(req, '\n', split);
    size_t plen = nl ? (size_t)(nl - req) : split;
    check_path(req, plen, id);
    if (nl)
        check_last_event(nl + 1, split - plen - 1, id);
    run_log(data + 1 + split, size - 1 - split);
    return 0;
}
