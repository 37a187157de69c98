/* prom_text — see prom_text.h. */
#include "controlplane/prom_text.h"

#include <stdlib.h>
#include <string.h>

bool prom_sum(const char *text, size_t len, const char *name, double *sum)
{
    size_t nl = strlen(name);
    bool found = false;
    *sum = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && memcmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            const char *sp = eol;
            while (sp > p && sp[-1] != ' ')
                sp--;
            if (sp == p) { /* no space: no value */
                p = eol + 1;
                continue;
            }
            char num[32];
            size_t k = (size_t)(eol - sp) < sizeof num - 1 ? (size_t)(eol - sp) : sizeof num - 1;
            memcpy(num, sp, k);
            num[k] = '\0';
            char *e;
            double v = strtod(num, &e);
            if (e != num && v >= 0) {
                *sum += v;
                found = true;
            }
        }
        p = eol + 1;
    }
    return found;
}
