/*
 * JSON text out: the one string escaper of the tree (the injector's patches, the webhook's
 * answers, the proxy's access log, /connections and /stats). Runs that need no escape are
 * appended in one piece, which is most of any text.
 */
#pragma once

#include <stddef.h>

struct strbuf;

/* Appends s to b as a JSON string, quotes included. */
void json_str(struct strbuf *b, const char *s);
/* The same for len bytes (a scalar's text may hold a NUL, which becomes \u0000). */
void json_strn(struct strbuf *b, const char *s, size_t len);
