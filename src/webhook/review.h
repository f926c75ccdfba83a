/*
 * One AdmissionReview, in and out (SEMANTICS.md section 1): decode the request the API server
 * sent, inject its pod with the same code as `pilotfish inject`, and answer in the request's
 * own apiVersion with the request's uid and, when the pod changed, a base64 JSON Patch from the
 * pod as received to the injected pod. Everything that can go wrong inside the body is an
 * answer with allowed: false and a message, never a crash; the HTTP layer is the server's.
 */
#pragma once

#include <stddef.h>

struct inject_config;
struct strbuf;

enum review_outcome {
        REVIEW_INJECTED = 0,
        REVIEW_SKIPPED,
        REVIEW_FAILED,          /* allowed: false: an injection error or an undecodable body */
};

/*
 * Answers body (len bytes) for the request path (/inject, or /inject/k/v/... with the
 * environment overrides of SEMANTICS 1.3) into out, an AdmissionReview JSON document.
 */
enum review_outcome review_handle(const struct inject_config *c, const char *body, size_t len, const char *path,
                                  struct strbuf *out);
