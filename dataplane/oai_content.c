/* oai_content — see oai_content.h. */
#include "dataplane/oai_content.h"

void oai_content_text(const json_t *content, oai_text_fn fn, void *ctx)
{
    if (json_is_string(content)) {
        fn(ctx, json_string_value(content), json_string_length(content));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach ((json_t *)content, i, part) {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t))
            fn(ctx, json_string_value(t), json_string_length(t));
    }
}
