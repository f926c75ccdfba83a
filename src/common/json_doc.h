/*
 * JSON text in: one JSON document read with libfyaml in JSON mode, for what the proxy reads
 * from its environment (ISTIO_KUBE_APP_PROBERS, ISTIO_METAJSON_LABELS), which Istio's Go
 * agent reads with encoding/json. The text must be exactly one JSON value: libfyaml's
 * builder would read the first document of a stream and drop what follows, so the parser is
 * asked for a second document, which must not exist. libfyaml's diagnostics never reach
 * stderr; the first one becomes the reason.
 */
#pragma once

#include <stddef.h>

struct fy_document;
struct strbuf;

/*
 * Parses text[0..len) as one JSON document. Returns it (the caller frees it with
 * fy_document_destroy()), or NULL with the reason appended to why (may be NULL): "empty
 * input", "more than one JSON value", or libfyaml's own words. A repeated key is kept, not
 * refused: Go's decoder lets the last one win, and the caller looks keys up accordingly.
 */
struct fy_document *json_doc_parse(const char *text, size_t len, struct strbuf *why);
