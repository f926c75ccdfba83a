/*
 * Access log lines; see access_log.h. Each line is built whole in memory and written with one
 * write(2), so lines from several workers never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "proxy/access_log.h"
#include "proxy/origdst.h"
#include "proxy/relay.h"

/* A line's bound: the fields are addresses and short words today, paths and user agents once
 * HTTP is tracked; a line past this is dropped rather than grown without end. */
#define ACCESS_LOG_LINE_MAX (64u << 10)

static const char *or_empty(const char *s)
{
        return s ? s : "";
}

int access_log_format(const struct access_log_entry *e, bool json, struct strbuf *out)
{
        if (!json) {
                strbuf_printf(out, "[%s] %s %s -> %s upstream=%s received=%llu sent=%llu duration=%llums %s %s\n",
                              or_empty(e->time), or_empty(e->direction), or_empty(e->client),
                              or_empty(e->original_dst), or_empty(e->upstream),
                              (unsigned long long)e->bytes_received, (unsigned long long)e->bytes_sent,
                              (unsigned long long)e->duration_ms, or_empty(e->termination),
                              or_empty(e->response_flags));
                return out->error;
        }
        strbuf_puts(out, "{\"time\":");
        json_str(out, or_empty(e->time));
        strbuf_puts(out, ",\"direction\":");
        json_str(out, or_empty(e->direction));
        strbuf_puts(out, ",\"client\":");
        json_str(out, or_empty(e->client));
        strbuf_puts(out, ",\"original_dst\":");
        json_str(out, or_empty(e->original_dst));
        strbuf_puts(out, ",\"upstream\":");
        json_str(out, or_empty(e->upstream));
        strbuf_printf(out, ",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration_ms\":%llu,\"termination\":",
                      (unsigned long long)e->bytes_received, (unsigned long long)e->bytes_sent,
                      (unsigned long long)e->duration_ms);
        json_str(out, or_empty(e->termination));
        strbuf_puts(out, ",\"response_flags\":");
        json_str(out, or_empty(e->response_flags));
        strbuf_puts(out, "}\n");
        return out->error;
}

void access_log_write(const struct relay *r, bool json, uint64_t now_ms)
{
        char client[64], dst[64], up[64], ts[40];
        struct strbuf line = { .limit = ACCESS_LOG_LINE_MAX };
        struct access_log_entry e;
        struct timespec now;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        sockaddr_format(&r->client_addr, client, sizeof(client));
        sockaddr_format(&r->orig_dst, dst, sizeof(dst));
        sockaddr_format(&r->upstream_addr, up, sizeof(up));
        e = (struct access_log_entry){
                .time = ts,
                .direction = r->direction == RELAY_OUTBOUND ? "outbound" : "inbound",
                .client = client,
                .original_dst = dst,
                .upstream = up,
                .bytes_received = atomic_load(&r->flow[RELAY_FLOW_UP].bytes),
                .bytes_sent = atomic_load(&r->flow[RELAY_FLOW_DOWN].bytes),
                .duration_ms = now_ms - r->started_ms,
                .termination = relay_end_str(r->end),
                .response_flags = relay_end_flag(r->end),
        };
        if (access_log_format(&e, json, &line) == 0 && write(STDOUT_FILENO, line.s, line.len) < 0) {
                /* stdout gone (a closed pipe): nothing else to tell. */
        }
        strbuf_deinit(&line);
}
