/*
 * A vector of owned C strings. Used for Istio's comma-separated flag lists, argv building and
 * split text lines.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct strv {
        char **v;       /* NULL-terminated when n > 0 */
        size_t n;
};

#define STRV_NULL { .v = NULL, .n = 0 }

int strv_push(struct strv *sv, const char *s);
int strv_push_take(struct strv *sv, char *s);
/*
 * Splits on `sep` and drops empty items, as Istio's list flags do ("6000,7000," is two items).
 * No trimming. Returns 0 or -ENOMEM.
 */
int strv_split(struct strv *sv, const char *s, char sep);
bool strv_contains(const struct strv *sv, const char *s);
int strv_copy(struct strv *dst, const struct strv *src);
void strv_deinit(struct strv *sv);
