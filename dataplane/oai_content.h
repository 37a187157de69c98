/*
 * oai_content — the text of an OpenAI message `content`: a string, or an
 * array of parts whose `text` members are the text (images and other parts
 * carry none).  One walker for everything that reads prompts: prefix
 * affinity (route.c), TF Serving's prompt (tfserving.c), llmsim's prefix
 * cache.
 *
 * Pure; safe anywhere.
 */
#ifndef SLUICE_OAI_CONTENT_H
#define SLUICE_OAI_CONTENT_H

#include <jansson.h>
#include <stddef.h>

typedef void (*oai_text_fn)(void *ctx, const char *s, size_t n);

/* Calls <fn> once per piece of text in <content>, in order (nothing for
 * NULL, null or anything else). */
void oai_content_text(const json_t *content, oai_text_fn fn, void *ctx);

#endif
