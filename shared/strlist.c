/* strlist — see strlist.h. */
#include "shared/strlist.h"

#include <string.h>

bool strlist_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s) {
            *p = s;
            return false;
        }
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t > s) {
            *item = s;
            *len = (size_t)(t - s);
            *p = e;
            return true;
        }
        s = e;
    }
}

bool strlist_has(const char *list, const char *s, size_t s_len)
{
    const char *item;
    size_t n;
    while (strlist_next(&list, &item, &n))
        if (n == s_len && memcmp(item, s, n) == 0)
            return true;
    return false;
}
