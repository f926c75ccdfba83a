/*
 * Answers already given, for requests that differ only in their uid. The pods of one burst (a
 * Deployment scaled up, a rollout, a Job's parallel pods) reach the webhook as the same
 * AdmissionReview byte for byte but for request.uid: the ReplicaSet controller creates them
 * from one template with generateName, and the API server names them after admission. An
 * injection costs about four times the parse that every request needs anyway; a burst pays it
 * once per distinct request.
 *
 * The key is the SHA-256 of the request path and the body with the uid's text cut out at the
 * position the parser found it. Since duplicate keys are refused, request.uid has exactly one
 * place in the document, so two bodies with the same key are the same request apart from the
 * uid, and the answer depends on nothing else (the configuration is fixed for the process's
 * life). Only injections are kept: skips and refusals cost no more than the parse.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

#define ANSWER_KEY_SIZE 32

/* Sets how many answers are kept (0: none, the cache is off). Call before any other use. */
void answer_cache_init(unsigned entries);
/* The key of body (len bytes) for path, without the bytes [cut, cut_end). */
void answer_cache_key(const char *path, const char *body, size_t len, size_t cut, size_t cut_end,
                      unsigned char key[ANSWER_KEY_SIZE]);
/* On a hit, appends the answer's text after the uid (the head before it is the request's
 * apiVersion and kind, which are in the key) to after. */
bool answer_cache_get(const unsigned char key[ANSWER_KEY_SIZE], struct strbuf *after);
/* Keeps an answer's text after the uid (nothing if the cache is off). */
void answer_cache_put(const unsigned char key[ANSWER_KEY_SIZE], const char *after, size_t after_len);
/* Frees every answer kept. */
void answer_cache_deinit(void);
/* Lookups that found an answer, and those that did not. */
void answer_cache_stats(unsigned long *hits, unsigned long *misses);
/* Whether the cache keeps anything. */
bool answer_cache_enabled(void);
