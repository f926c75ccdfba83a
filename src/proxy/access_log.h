/*
 * The access log: one line per connection when it closes (direction, client, original
 * destination, upstream address, bytes each way, duration, termination cause, response flag),
 * as text or JSON, on stdout. Off by default (--access-log).
 *
 * The line is made by a pure function from plain fields (access_log_format), so what a line
 * holds is testable without a relay; the JSON form escapes every string with common/json.h,
 * so any bytes in a field (a path or a user agent once HTTP is tracked) still give one valid
 * JSON object per line.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct relay;
struct strbuf;

/* One line's fields. Strings are borrowed, any bytes, NUL-terminated; NULL is written as "". */
struct access_log_entry {
        const char *time;               /* RFC 3339, UTC, e.g. 2026-01-02T03:04:05Z */
        const char *direction;          /* "outbound" or "inbound" */
        const char *client;             /* addresses as ADDR:PORT, [ADDR6]:PORT */
        const char *original_dst;
        const char *upstream;
        uint64_t bytes_received;        /* from the client */
        uint64_t bytes_sent;            /* to the client */
        uint64_t duration_ms;
        const char *termination;        /* relay_end_str() */
        const char *response_flags;     /* relay_end_flag(), "-" for none */
};

/*
 * Appends e's line, newline included, to out: text ("[TIME] DIR CLIENT -> DST upstream=UP
 * received=N sent=N duration=Nms CAUSE FLAGS") or one JSON object with the keys time,
 * direction, client, original_dst, upstream, bytes_received, bytes_sent, duration_ms,
 * termination, response_flags. Returns 0, or the strbuf's error, with a partial line in out
 * that the caller discards.
 */
int access_log_format(const struct access_log_entry *e, bool json, struct strbuf *out);

/* Writes r's line with one write(2); now_ms is the loop's clock. Called from the relay's worker
 * thread. A line that cannot be built (out of memory) is dropped. */
void access_log_write(const struct relay *r, bool json, uint64_t now_ms);
