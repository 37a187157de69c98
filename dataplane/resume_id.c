/* resume_id — see resume_id.h. */
#include "dataplane/resume_id.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool lower_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

int resume_id_from_path(const char *path, size_t len, char id[RESUME_ID_LEN + 1])
{
    static const char pre[] = "/v1/streams/";
    const size_t pl = sizeof pre - 1;
    if (len < pl || memcmp(path, pre, pl) != 0)
        return -EINVAL;
    const char *p = path + pl;
    size_t n = len - pl;
    const char *q = memchr(p, '?', n); /* a query (a cache buster) says nothing here */
    if (q)
        n = (size_t)(q - p);
    if (n == RESUME_ID_LEN + 1 && p[RESUME_ID_LEN] == '/')
        n--;
    if (n != RESUME_ID_LEN)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!lower_hex(p[i]))
            return -EINVAL;
    memcpy(id, p, RESUME_ID_LEN);
    id[RESUME_ID_LEN] = '\0';
    return 0;
}

int resume_id_last_event(const char *v, size_t len, const char *id, uint64_t *seq)
{
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    if (len < RESUME_ID_LEN + 2 || memcmp(v, id, RESUME_ID_LEN) != 0 || v[RESUME_ID_LEN] != ':')
        return -EINVAL;
    uint64_t n = 0;
    for (size_t i = RESUME_ID_LEN + 1; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(v[i] - '0');
        if (n > (UINT64_MAX - 1 - d) / 10) /* and n + 1 must not wrap */
            return -EINVAL;
        n = n * 10 + d;
    }
    *seq = n;
    return 0;
}
