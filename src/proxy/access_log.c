/*
 * Access log lines; see access_log.h. Each line is built in a stack buffer and written with
 * one write(2), so lines from several workers never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/access_log.h"
#include "proxy/origdst.h"
#include "proxy/relay.h"

void access_log_write(const struct relay *r, bool json, uint64_t now_ms)
{
        char client[64], dst[64], up[64], line[512], ts[40];
        const char *dir = r->direction == RELAY_OUTBOUND ? "outbound" : "inbound";
        struct timespec now;
        struct tm tm;
        int n;

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        sockaddr_format(&r->client_addr, client, sizeof(client));
        sockaddr_format(&r->orig_dst, dst, sizeof(dst));
        sockaddr_format(&r->upstream_addr, up, sizeof(up));
        if (json)
                n = snprintf(line, sizeof(line),
                             "{\"time\":\"%s\",\"direction\":\"%s\",\"client\":\"%s\",\"original_dst\":\"%s\","
                             "\"upstream\":\"%s\",\"bytes_received\":%llu,\"bytes_sent\":%llu,\"duration_ms\":%llu,"
                             "\"termination\":\"%s\",\"response_flags\":\"%s\"}\n",
                             ts, dir, client, dst, up, (unsigned long long)atomic_load(&r->flow[RELAY_FLOW_UP].bytes),
                             (unsigned long long)atomic_load(&r->flow[RELAY_FLOW_DOWN].bytes),
                             (unsigned long long)(now_ms - r->started_ms), relay_end_str(r->end), relay_end_flag(r->end));
        else
                n = snprintf(line, sizeof(line), "[%s] %s %s -> %s upstream=%s received=%llu sent=%llu duration=%llums %s %s\n",
                             ts, dir, client, dst, up, (unsigned long long)atomic_load(&r->flow[RELAY_FLOW_UP].bytes),
                             (unsigned long long)atomic_load(&r->flow[RELAY_FLOW_DOWN].bytes),
                             (unsigned long long)(now_ms - r->started_ms), relay_end_str(r->end), relay_end_flag(r->end));
        if (n > 0 && write(STDOUT_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0)
                return;
}
