/*
 * tfserving — OpenAI's API over TensorFlow Serving's REST :predict: a chat or
 * completions request becomes one prediction request for a model that maps
 * a string to a string, and its prediction becomes the answer's text.
 *
 * The signature assumed (README "TensorFlow Serving backends"): one string
 * input and one string output.  By default the instance is the prompt
 * itself ({"instances":["..."]}) and the prediction is the text
 * ({"predictions":["..."]}); with the backend's tf_input / tf_output the
 * instance is {"<tf_input>":"..."} and the text is predictions[0]
 * ["<tf_output>"]; tf_signature adds "signature_name".  A chat's messages
 * become the prompt: one message is its text, a conversation is one
 * "<role>: <text>" line per message.
 *
 * TF Serving does not stream: the whole answer is one event (streaming
 * clients) or one body.  Once per request, with jansson; safe anywhere.
 */
#ifndef SLUICE_TFSERVING_H
#define SLUICE_TFSERVING_H

#include <stdbool.h>
#include <stddef.h>

#include "shared/config.h"

/* The :predict request for an OpenAI request for <model>: *target (the
 * path, malloc'd) and *out (the body, malloc'd).  0 or an api_error with a
 * message in <detail>. */
int tfs_request(const struct config_backend *be, bool chat, const char *model, const char *body,
                size_t len, char **target, char **out, size_t *out_len, char *detail,
                size_t detail_cap);

/* The text of a :predict answer (malloc'd, NUL-terminated, its length in
 * *text_len).  0, -EPROTO (not a prediction of a string), -ECONNABORTED (TF
 * Serving's {"error": ...}: *text is its message), -ENOMEM. */
int tfs_answer(const struct config_backend *be, const char *body, size_t len, char **text,
               size_t *text_len);

#endif
