/*
 * fmt — integer formatting for the per-token path, where snprintf's format
 * parsing costs more than the rest of building an event's prefix.
 */
#ifndef SLUICE_FMT_H
#define SLUICE_FMT_H

#include <stddef.h>
#include <stdint.h>

/* Writes <v> in decimal at dst (no NUL); returns the length (<= 20). */
static inline size_t fmt_u64(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

/* Writes <v> as exactly <n> lowercase hex digits at dst (no NUL; leading
 * zeros; the caller makes n large enough). */
static inline void fmt_hexn(char *dst, uint32_t v, unsigned n)
{
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = n; i-- > 0;) {
        dst[i] = hex[v & 15];
        v >>= 4;
    }
}

/* Hex digits needed to write <v>. */
static inline unsigned fmt_hex_digits(uint64_t v)
{
    unsigned n = 1;
    while (v >>= 4)
        n++;
    return n;
}

#endif
