/*
 * UTF-8 well-formedness, one sequence at a time: what the JSON escaper needs to pass valid
 * text through untouched and replace the rest, and what a validator of whole texts loops over.
 * Well-formed is RFC 3629's (and Go's unicode/utf8): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF.
 */
#pragma once

#include <stddef.h>

/*
 * The length (1 to 4) of the well-formed UTF-8 sequence that starts at s, which has len > 0
 * bytes available, or 0 when the byte at s does not start one (a stray continuation byte, a
 * lead byte that cannot start a sequence, or a sequence cut short, overlong or out of range).
 * Never reads past s + len.
 */
size_t utf8_seq_len(const unsigned char *s, size_t len);
/* The offset of the first byte of text that does not start a well-formed sequence, or len. */
size_t utf8_invalid_at(const char *text, size_t len);
