/*
 * The pre-read stage's choice; see preread.h. Every connection is opaque TCP today: the
 * choice is made on the first bytes, or at connect for a client that sent none. Protocol
 * detection (the HTTP/2 preface, an HTTP/1.x request line, a TLS ClientHello) goes here.
 */
#include "proxy/preread.h"
#include "proxy/tracker.h"

const struct tracker_ops *preread_select(const char *data, size_t len, bool final)
{
        (void)data;
        if (len == 0 && !final)
                return NULL;
        return &tracker_opaque;
}
