/*
 * UTF-8 sequences; see utf8.h. Written as the table of RFC 3629 section 4 (the ranges of the
 * second byte depend on the first), which rules out overlong forms, surrogates and values past
 * U+10FFFF without decoding the code point.
 */
#include "common/utf8.h"

static int in(unsigned char c, unsigned char lo, unsigned char hi)
{
        return c >= lo && c <= hi;
}

size_t utf8_seq_len(const unsigned char *s, size_t len)
{
        unsigned char c = s[0], lo = 0x80, hi = 0xbf;
        size_t n;

        if (c < 0x80)
                return 1;
        if (in(c, 0xc2, 0xdf))
                n = 2;
        else if (in(c, 0xe0, 0xef))
                n = 3;
        else if (in(c, 0xf0, 0xf4))
                n = 4;
        else
                return 0;               /* 80..BF continuation, C0/C1 overlong, F5..FF */
        if (c == 0xe0)
                lo = 0xa0;              /* below: overlong */
        else if (c == 0xed)
                hi = 0x9f;              /* above: surrogates */
        else if (c == 0xf0)
                lo = 0x90;              /* below: overlong */
        else if (c == 0xf4)
                hi = 0x8f;              /* above: past U+10FFFF */
        if (len < n || !in(s[1], lo, hi))
                return 0;
        for (size_t i = 2; i < n; i++)
                if (!in(s[i], 0x80, 0xbf))
                        return 0;
        return n;
}

size_t utf8_invalid_at(const char *text, size_t len)
{
        const unsigned char *s = (const unsigned char *)text;
        size_t i = 0, n;

        while (i < len) {
                n = s[i] < 0x80 ? 1 : utf8_seq_len(s + i, len - i);
                if (n == 0)
                        return i;
                i += n;
        }
        return len;
}
