/*
 * libFuzzer target for controlplane/prom_text (a backend's /metrics, read
 * by the control plane's health checks).  Against a reference that splits
 * the text into lines and fields another way (strtok_r on a copy, strtod):
 * the same "found", and the same sum.  Any disagreement aborts.
 *
 * Input: the metric name up to the first space, then the text.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/prom_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool reference(const char *text, size_t len, const char *name, double *sum)
{
    char *copy = malloc(len + 1);
    CHECK(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    size_t nl = strlen(name);
    bool found = false;
    *sum = 0;
    /* lines end at '\n'; a NUL inside the text ends what strtok sees of a line,
     * so the reference stops a line there too */
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t ll = strlen(line);
        if (ll <= nl || strncmp(line, name, nl) != 0 || (line[nl] != '{' && line[nl] != ' '))
            continue;
        const char *v = strrchr(line, ' ');
        if (!v)
            continue; /* no value */
        v++;
        char num[32];
        size_t k = strlen(v) < sizeof num - 1 ? strlen(v) : sizeof num - 1;
        memcpy(num, v, k);
        num[k] = '\0';
        char *e;
        double d = strtod(num, &e);
        if (e != num && d >= 0) {
            *sum += d;
            found = true;
        }
    }
    free(copy);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *sp = memchr(data, ' ', size);
    if (!sp)
        return 0;
    size_t nl = (size_t)(sp - (const char *)data);
    if (!nl || nl > 64 || memchr(data, '\0', nl) || memchr(data, '\n', nl))
        return 0;
    char name[65];
    memcpy(name, data, nl);
    name[nl] = '\0';
    const char *text = sp + 1;
    size_t len = size - nl - 1;
    if (memchr(text, '\0', len))
        return 0; /* HTTP bodies of /metrics are text: NULs make the reference differ */
    double got, want;
    bool f1 = prom_sum(text, len, name, &got);
    bool f2 = reference(text, len, name, &want);
    CHECK(f1 == f2);
    CHECK(!f1 || got == want || (isnan(got) && isnan(want)) ||
          fabs(got - want) <= 1e-9 * fabs(want));
    return 0;
}
