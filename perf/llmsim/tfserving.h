/*
 * tfserving — TensorFlow Serving 2.x's REST wire format: the model paths
 * (/v1/models/NAME[/versions/N][:predict]), the predict request body in row
 * ("instances") or columnar ("inputs") form, read with jansson, and the
 * bytes of its answers (model status, predictions, {"error": ...}).
 *
 * llmsim's "model" takes one string input (the prompt) and has one string
 * output (the answer), so each instance is a prompt and each prediction an
 * answer.  Pure apart from the output; the parser's one allocation (the
 * instances' lengths, for more than one instance) goes to the caller.
 */
#ifndef LLMSIM_TFSERVING_H
#define LLMSIM_TFSERVING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "perf/llmsim/bbuf.h"
#include "perf/llmsim/request.h"

/* A model path, matched case-insensitively as TF Serving's regexes are. */
struct tfs_path {
    const char *name; /* into the request path */
    size_t name_len;
    bool has_version;
    uint64_t version;
    bool predict; /* ":predict", else the model status */
};

/* 0 when <p> is "/v1/models/NAME[/versions/N][:predict]", else -EINVAL. */
int tfs_parse_path(const char *p, size_t n, struct tfs_path *out);

/* GET /v1/models/NAME: one version, "1", AVAILABLE. */
void tfs_status_body(struct bbuf *b);
/* {"error":"<msg>"}. */
void tfs_error_body(struct bbuf *b, const char *msg, size_t msg_len);
/* {"predictions":[...]} (rows) or {"outputs":[...]} (<columns>): instance i
 * answers " w0" .. " w<len[i]-1>". */
void tfs_predict_body(struct bbuf *b, bool columns, const uint32_t *len, uint32_t n);

/* Reads a predict body into <g> (prompt tokens of all instances, the longest
 * max_tokens, prefix blocks, n_inst and, for several instances, inst_len:
 * each one's max_tokens, 0 for none).  *columns tells "inputs" from
 * "instances".  0, or -EINVAL with err set (400 and TF Serving's message);
 * on error nothing is left allocated. */
int tfs_parse(const char *body, size_t len, uint32_t max_model_len, struct req_gen *g,
              bool *columns, struct req_error *err);

#endif
