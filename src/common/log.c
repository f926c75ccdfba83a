/*
 * stderr logger. Text lines carry an RFC 3339 timestamp and the level, as Istio's do, so log
 * scrapers written for istio-init keep working; JSON lines carry the same three fields.
 *
 * The proxy logs from every worker thread while the admin thread may change the level
 * (POST /logging), so the level and the format are atomics, and each line is formatted
 * whole into a bounded buffer first and handed to the kernel in one write(2): lines from
 * different threads never interleave mid-line, which several stdio calls per line allowed.
 * stderr is unbuffered, so the commands' own fprintf(stderr) lines keep their order.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/strbuf.h"

/*
 * Relaxed order is enough: each is a standalone flag that guards no other data, and a
 * thread that logs one more line at the old level after a change is harmless.
 */
static _Atomic(enum log_level) log_level_current = LOG_LEVEL_INFO;
static atomic_bool log_json;

static const char *const log_level_names[] = {
        [LOG_LEVEL_NONE] = "none",
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warn",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

/* Ends a line that did not fit in LOG_LINE_MAX; inside the JSON string, so the line parses. */
static const char log_truncated[] = " [truncated]";

void log_set_level(enum log_level level)
{
        atomic_store_explicit(&log_level_current, level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
        return atomic_load_explicit(&log_level_current, memory_order_relaxed);
}

void log_set_json(bool json)
{
        atomic_store_explicit(&log_json, json, memory_order_relaxed);
}

static int log_level_from_name(const char *s, size_t n, enum log_level *ret)
{
        for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++)
                if (strlen(log_level_names[i]) == n && strncmp(s, log_level_names[i], n) == 0) {
                        *ret = (enum log_level)i;
                        return 0;
                }
        /* Istio also spells "warning" and "fatal". */
        if (n == 7 && strncmp(s, "warning", 7) == 0) {
                *ret = LOG_LEVEL_WARN;
                return 0;
        }
        if (n == 5 && strncmp(s, "fatal", 5) == 0) {
                *ret = LOG_LEVEL_ERROR;
                return 0;
        }
        return -EINVAL;
}

int log_parse_output_level(const char *spec, enum log_level *ret_level)
{
        enum log_level level = log_get_level();
        const char *p = spec;

        while (*p) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                const char *colon = memchr(p, ':', len);
                enum log_level l;

                if (len == 0) {
                        p += end ? 1 : 0;
                        if (!end)
                                break;
                        continue;
                }
                if (colon) {
                        size_t scope_len = (size_t)(colon - p);
                        if (log_level_from_name(colon + 1, len - scope_len - 1, &l) < 0)
                                return -EINVAL;
                        if (scope_len == 7 && strncmp(p, "default", 7) == 0)
                                level = l;
                } else {
                        if (log_level_from_name(p, len, &l) < 0)
                                return -EINVAL;
                        level = l;
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        *ret_level = level;
        return 0;
}

/*
 * The length of the unit of text at s (n bytes left) that a cut must not split: a JSON
 * escape ("\n", "\u0001") when json, or a UTF-8 sequence; a stray byte is a unit of one.
 */
static size_t log_unit_len(const char *s, size_t n, bool json)
{
        unsigned char c = (unsigned char)s[0];
        size_t want = 1;

        if (json && c == '\\')
                want = n > 1 && s[1] == 'u' ? 6 : 2;
        else if (c >= 0xf0 && c < 0xf8)
                want = 4;
        else if (c >= 0xe0)
                want = c < 0xf0 ? 3 : 1;
        else if (c >= 0xc0)
                want = 2;
        if (want > n)
                return json && c == '\\' ? n : 1;
        if (!(json && c == '\\'))
                for (size_t i = 1; i < want; i++)
                        if (((unsigned char)s[i] & 0xc0) != 0x80)
                                return 1;
        return want;
}

/*
 * Appends body (n bytes) to line (len bytes used of LOG_LINE_MAX), then tail. When body does
 * not fit whole (or cut says it was cut already), as much of it as fits with the marker goes
 * in, ending on a whole escape or character. Returns the new length.
 */
static size_t log_put_body(char *line, size_t len, const char *body, size_t n, bool cut, bool json,
                           const char *tail)
{
        size_t tail_len = strlen(tail), room, i = 0;

        if (!cut && len + n + tail_len <= LOG_LINE_MAX) {
                memcpy(line + len, body, n);
                len += n;
        } else {
                room = LOG_LINE_MAX - len - tail_len - (sizeof(log_truncated) - 1);
                while (i < n) {
                        size_t u = log_unit_len(body + i, n - i, json);

                        if (i + u > room)
                                break;
                        i += u;
                }
                memcpy(line + len, body, i);
                len += i;
                memcpy(line + len, log_truncated, sizeof(log_truncated) - 1);
                len += sizeof(log_truncated) - 1;
        }
        memcpy(line + len, tail, tail_len);
        return len + tail_len;
}

/*
 * One write(2) for the whole line, under a lock. A write of at most PIPE_BUF (4096) bytes to
 * a pipe is atomic (POSIX), and to a file opened with O_APPEND Linux appends each write
 * whole; but a longer line to a pipe (a container runtime's log pipe), socket or terminal
 * can be taken in parts when the reader lags, and other writes may land between the parts.
 * The lock keeps this process's threads from doing that to each other, whatever the length;
 * another process writing into the same pipe can still split a line longer than PIPE_BUF
 * (no lock could prevent that), never a shorter one. The lock is held only around the
 * write, and a thread blocked on a full pipe would block without it too.
 */
static pthread_mutex_t log_write_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_write(const char *p, size_t n)
{
        pthread_mutex_lock(&log_write_lock);
        while (n > 0) {
                ssize_t w = write(STDERR_FILENO, p, n);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        break;          /* nowhere to report that the log is broken */
                }
                p += w;
                n -= (size_t)w;
        }
        pthread_mutex_unlock(&log_write_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        char msg[LOG_LINE_MAX], line[LOG_LINE_MAX], ts[96];
        enum log_level current = log_get_level();
        int saved_errno = errno;
        struct timespec now;
        struct tm tm;
        size_t len;
        va_list ap;
        int n;

        if (level > current || level == LOG_LEVEL_NONE)
                return;

        va_start(ap, fmt);
        n = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (n < 0) {
                msg[0] = '\0';
                n = 0;
        }

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000);

        /* The prefix is at most ~140 bytes, far below LOG_LINE_MAX. */
        if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
                /* Escaped by the tree's one JSON escaper, bounded: a message is at most
                 * LOG_LINE_MAX bytes, and an escape at most 6 for 1. */
                struct strbuf esc = { .limit = 6 * LOG_LINE_MAX + 2 };

                len = (size_t)snprintf(line, sizeof(line), "{\"level\":\"%s\",\"time\":\"%s\",\"msg\":",
                                       log_level_names[level], ts);
                json_strn(&esc, msg, strlen(msg));
                if (esc.error || esc.len < 2) {
                        static const char lost[] = "\"(message lost: out of memory)";

                        len = log_put_body(line, len, lost, sizeof(lost) - 1, false, true, "\"}\n");
                } else {
                        /* Without the closing quote, which the tail puts back after any cut. */
                        len = log_put_body(line, len, esc.s, esc.len - 1, (size_t)n >= sizeof(msg), true,
                                           "\"}\n");
                }
                strbuf_deinit(&esc);
        } else {
                len = (size_t)snprintf(line, sizeof(line), "%s\t%s\t", ts, log_level_names[level]);
                len = log_put_body(line, len, msg, strlen(msg), (size_t)n >= sizeof(msg), false, "\n");
        }
        log_write(line, len);
        errno = saved_errno;
}
