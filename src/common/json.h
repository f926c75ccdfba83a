/*
 * JSON text out: the one string escaper of the tree (the injector's patches, the webhook's
 * answers, the proxy's access log, /connections and /stats). Any bytes in, valid JSON out
 * (RFC 8259): text that comes from outside (a path, a user agent, a label) may be anything.
 *
 * - Well-formed UTF-8 passes through as it is (no \u escapes for non-ASCII), so the
 *   injector's output for valid input is byte for byte what it was.
 * - '"' and '\\' are escaped, \n \r \t by name, the other control characters (U+0000..U+001F)
 *   and DEL as \u00XX.
 * - Each byte that is not part of a well-formed UTF-8 sequence (common/utf8.h: stray
 *   continuation bytes, overlong forms, surrogates, past U+10FFFF, a cut-short sequence) is
 *   written as \ufffd, one per byte, as Go's encoding/json does: a JSON parser reads U+FFFD
 *   (the replacement character) where the bad byte was.
 *
 * Runs that need no escape are appended in one piece, which is most of any text.
 */
#pragma once

#include <stddef.h>

struct strbuf;

/* Appends s to b as a JSON string, quotes included. */
void json_str(struct strbuf *b, const char *s);
/* The same for len bytes (a scalar's text may hold a NUL, which becomes \u0000). */
void json_strn(struct strbuf *b, const char *s, size_t len);
