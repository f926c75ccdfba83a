/*
 * Unit tests for common/log.c: the exact text and JSON line formats (any bytes make valid
 * JSON), the bound on a line (a longer message is cut with a marker, never split, and a cut
 * JSON line still parses), that lines logged by several threads at once into one pipe all
 * come out whole, and that a level set from one thread is seen by another. stderr is
 * redirected into a pipe that a reader thread drains; JSON lines are checked with libfyaml's
 * JSON parser, which shares no code with the escaper. `make test` runs it under
 * ThreadSanitizer too: the level and the format flag are read on every call from every thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <libfyaml.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tap.h"

/* What reached stderr between capture_start() and capture_stop(). */
struct capture {
        int saved_fd;           /* the real stderr */
        int read_fd;
        pthread_t reader;
        char *buf;              /* NUL-terminated once stopped */
        size_t len, cap;
};

static void *capture_reader(void *arg)
{
        struct capture *c = arg;

        for (;;) {
                ssize_t n;

                if (c->cap - c->len < 65536) {
                        c->cap = c->cap * 2 + 65536;
                        c->buf = realloc(c->buf, c->cap);
                        if (!c->buf)
                                abort();
                }
                n = read(c->read_fd, c->buf + c->len, c->cap - c->len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                c->len += (size_t)n;
        }
        c->buf[c->len] = '\0';
        return NULL;
}

static void capture_start(struct capture *c)
{
        int p[2];

        memset(c, 0, sizeof(*c));
        fflush(stderr);
        if (pipe2(p, O_CLOEXEC) < 0 || (c->saved_fd = dup(STDERR_FILENO)) < 0 ||
            dup2(p[1], STDERR_FILENO) < 0)
                abort();
        close(p[1]);
        c->read_fd = p[0];
        if (pthread_create(&c->reader, NULL, capture_reader, c) != 0)
                abort();
}

/* Puts stderr back, which closes the pipe's last write end: the reader sees EOF. */
static char *capture_stop(struct capture *c)
{
        if (dup2(c->saved_fd, STDERR_FILENO) < 0)
                abort();
        close(c->saved_fd);
        pthread_join(c->reader, NULL);
        close(c->read_fd);
        return c->buf;
}

/* Shows what was logged as TAP comments, one "# " line per line. */
static void diag_output(const char *out)
{
        for (const char *p = out, *nl; *p; p = nl ? nl + 1 : p + strlen(p)) {
                nl = strchr(p, '\n');
                printf("# logged: %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
        }
}

/* "2026-12-04T02:09:46.442803Z": digits where digits go, the separators in place. */
static bool is_timestamp(const char *s, size_t n)
{
        static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

        if (n != sizeof(shape) - 1)
                return false;
        for (size_t i = 0; i < n; i++)
                if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
                        return false;
        return true;
}

/* A text line: timestamp TAB level TAB message; *ret_msg points at the message. */
static bool text_line_ok(const char *line, const char *level, const char **ret_msg)
{
        const char *tab = strchr(line, '\t');
        size_t ln = strlen(level);

        if (!tab || !is_timestamp(line, (size_t)(tab - line)) || strncmp(tab + 1, level, ln) != 0 ||
            tab[1 + ln] != '\t')
                return false;
        *ret_msg = tab + 2 + ln;
        return true;
}

/*
 * Parses one JSON line (without its newline) with libfyaml in JSON mode. Returns the decoded
 * "msg" (the caller frees) when the line is an object of exactly level, time and msg, in
 * that order, with the given level and a well-formed time; NULL otherwise.
 */
static char *json_line_msg(const char *line, size_t n, const char *level)
{
        struct fy_parse_cfg cfg = { .flags = FYPCF_QUIET | FYPCF_JSON_FORCE };
        static const char *const keys[] = { "level", "time", "msg" };
        struct fy_document *d = fy_document_build_from_string(&cfg, line, n);
        struct fy_node *root = d ? fy_document_root(d) : NULL;
        void *iter = NULL;
        struct fy_node_pair *pr;
        char *msg = NULL;
        size_t i = 0;
        bool ok = root && fy_node_is_mapping(root) && fy_node_mapping_item_count(root) == 3;

        while (ok && (pr = fy_node_mapping_iterate(root, &iter))) {
                struct fy_node *k = fy_node_pair_key(pr), *v = fy_node_pair_value(pr);
                size_t kl = 0, vl = 0;
                const char *ks = k ? fy_node_get_scalar(k, &kl) : NULL;
                const char *vs = v ? fy_node_get_scalar(v, &vl) : NULL;

                ok = ks && vs && kl == strlen(keys[i]) && memcmp(ks, keys[i], kl) == 0;
                if (ok && i == 0)
                        ok = vl == strlen(level) && memcmp(vs, level, vl) == 0;
                if (ok && i == 1)
                        ok = is_timestamp(vs, vl);
                if (ok && i == 2) {
                        msg = malloc(vl + 1);
                        if (!msg)
                                abort();
                        memcpy(msg, vs, vl);
                        msg[vl] = '\0';
                }
                i++;
        }
        if (d)
                fy_document_destroy(d);
        if (!ok) {
                free(msg);
                return NULL;
        }
        return msg;
}

/* The text format, byte for byte as before: "<RFC 3339 time>\t<level>\t<message>\n". */
static void test_text_format(void)
{
        struct capture c;
        const char *msg = NULL;
        char *out;

        log_set_json(false);
        log_set_level(LOG_LEVEL_INFO);
        capture_start(&c);
        log_info("hello %s %d", "world", 42);
        log_debug("not shown at info");
        out = capture_stop(&c);
        if (!text_line_ok(out, "info", &msg) || strcmp(msg, "hello world 42\n") != 0)
                diag_output(out);
        tap_ok(text_line_ok(out, "info", &msg) && strcmp(msg, "hello world 42\n") == 0,
               "a text line is time, TAB, level, TAB, the message and a newline");
        tap_ok(!strstr(out, "not shown"), "a debug line is dropped at level info");
        free(out);
}

/* The JSON format: one object per line, level, time, msg in that order, the message escaped. */
static void test_json_format(void)
{
        static const char tricky[] = "quote \" backslash \\ newline \n tab \t bell \a utf8 \xc3\xa9";
        struct capture c;
        char *out, *msg;
        size_t n;
        bool ok;

        log_set_json(true);
        log_set_level(LOG_LEVEL_INFO);
        capture_start(&c);
        log_warn("%s", tricky);
        out = capture_stop(&c);
        log_set_json(false);
        n = strlen(out);
        tap_ok(n > 0 && out[n - 1] == '\n' && strchr(out, '\n') == out + n - 1,
               "a JSON line is one line, even when the message holds a newline");
        ok = strncmp(out, "{\"level\":\"warn\",\"time\":\"", 24) == 0 &&
             strstr(out, "\",\"msg\":\"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007 utf8 \xc3\xa9\"}\n");
        if (!ok)
                diag_output(out);
        tap_ok(ok, "the JSON line is {\"level\":...,\"time\":...,\"msg\":...} with the message escaped");
        msg = n ? json_line_msg(out, n - 1, "warn") : NULL;
        tap_ok(msg && strcmp(msg, tricky) == 0, "the JSON line parses, and msg decodes to the message logged");
        free(msg);
        free(out);

        /* Bytes that are not UTF-8 (a path or a header logged as received) still make JSON. */
        log_set_json(true);
        capture_start(&c);
        log_warn("bad \xff\xc3 bytes");
        out = capture_stop(&c);
        log_set_json(false);
        n = strlen(out);
        msg = n ? json_line_msg(out, n - 1, "warn") : NULL;
        tap_ok(msg && strcmp(msg, "bad \xef\xbf\xbd\xef\xbf\xbd bytes") == 0,
               "a message with bytes that are not UTF-8 is a JSON line that parses, each bad byte U+FFFD");
        free(msg);
        free(out);
}

/* A message longer than a line is cut with a marker: still one line, within LOG_LINE_MAX. */
static void test_truncation(void)
{
        size_t big = 3 * LOG_LINE_MAX;
        char *s = malloc(big + 1), *out, *msg;
        const char *tmsg = NULL;
        struct capture c;
        size_t n;

        if (!s)
                abort();
        /* Multi-byte characters and escapes all the way, so any cut has one to split. */
        for (size_t i = 0; i + 3 <= big; i += 3) {
                if ((i / 3) % 2)
                        memcpy(s + i, "\xe2\x82\xac", 3);       /* U+20AC, 3 bytes */
                else
                        memcpy(s + i, "\"\x01\\", 3);           /* 2 + 6 + 2 escaped */
        }
        s[big - big % 3] = '\0';

        log_set_level(LOG_LEVEL_INFO);
        capture_start(&c);
        log_info("%s", s);
        out = capture_stop(&c);
        n = strlen(out);
        tap_ok(n <= LOG_LINE_MAX && n > LOG_LINE_MAX / 2 && strchr(out, '\n') == out + n - 1 &&
               n > 13 && strcmp(out + n - 13, " [truncated]\n") == 0,
               "a text line longer than LOG_LINE_MAX is one line of at most LOG_LINE_MAX bytes ending in the marker (%zu bytes)", n);
        tap_ok(text_line_ok(out, "info", &tmsg) && strncmp(tmsg, s, (size_t)(out + n - 13 - tmsg)) == 0 &&
               (((unsigned char)s[out + n - 13 - tmsg]) & 0xc0) != 0x80,
               "the cut text line holds the start of the message and ends on a whole character");
        free(out);

        log_set_json(true);
        capture_start(&c);
        log_info("%s", s);
        out = capture_stop(&c);
        log_set_json(false);
        n = strlen(out);
        msg = n ? json_line_msg(out, n - 1, "info") : NULL;
        tap_ok(n <= LOG_LINE_MAX && strchr(out, '\n') == out + n - 1 && n > 15 &&
               strcmp(out + n - 15, " [truncated]\"}\n") == 0,
               "a JSON line longer than LOG_LINE_MAX is one line of at most LOG_LINE_MAX bytes, the marker inside msg (%zu bytes)", n);
        tap_ok(msg && strlen(msg) > 12 && strncmp(msg, s, strlen(msg) - 12) == 0 &&
               (((unsigned char)s[strlen(msg) - 12]) & 0xc0) != 0x80,
               "the cut JSON line parses, and msg is the start of the message, cut on a whole character and escape");
        free(msg);
        free(out);
        free(s);
}

#define THREADS 4
#define LINES 1000

struct writer {
        int id;
};

/* Line i of thread t: its numbers, then a filler of a length that depends on both. */
static size_t filler_len(int t, int i)
{
        /* 0 .. 6 KiB: text lines below PIPE_BUF (where one write to a pipe is atomic
         * anyway) and above it, where only log.c's lock keeps them whole; escaped JSON
         * lines reach 7.5 KiB, just below LOG_LINE_MAX, so none is cut. */
        return (size_t)((t * 7919 + i * 104729) % 6000);
}

static void *writer_thread(void *arg)
{
        const struct writer *w = arg;
        static const char pattern[] = "abcdefghij\"\\\t";
        char filler[6001];

        for (int i = 0; i < LINES; i++) {
                size_t n = filler_len(w->id, i);

                for (size_t k = 0; k < n; k++)
                        filler[k] = pattern[(k + (size_t)i) % (sizeof(pattern) - 1)];
                filler[n] = '\0';
                log_info("t=%d i=%d n=%zu %s.", w->id, i, n, filler);
        }
        return NULL;
}

/* Checks one message against what writer t wrote as line i; sets seen. */
static bool message_ok(const char *msg, size_t len, unsigned char seen[THREADS][LINES])
{
        static const char pattern[] = "abcdefghij\"\\\t";
        int t, i, off = 0;
        size_t n;

        /* No space after %zu: it would skip a TAB that starts the filler. */
        if (sscanf(msg, "t=%d i=%d n=%zu%n", &t, &i, &n, &off) != 3 || msg[off++] != ' ' || t < 0 || t >= THREADS ||
            i < 0 || i >= LINES || n != filler_len(t, i) || len != (size_t)off + n + 1 || msg[len - 1] != '.')
                return false;
        for (size_t k = 0; k < n; k++)
                if (msg[off + k] != pattern[(k + (size_t)i) % (sizeof(pattern) - 1)])
                        return false;
        seen[t][i]++;
        return true;
}

/*
 * Several threads log at once into one pipe: every line read back is one whole line of one
 * writer, each exactly once, and (JSON) each parses. The reader is slower than the writers,
 * so the pipe fills and long writes are taken in parts: the case a lock must cover.
 */
static void test_concurrent(bool json)
{
        static unsigned char seen[THREADS][LINES];
        struct writer w[THREADS];
        pthread_t th[THREADS];
        size_t n_lines = 0, n_bad = 0, n_missing = 0;
        struct capture c;
        char *out, *line, *save = NULL;

        memset(seen, 0, sizeof(seen));
        log_set_json(json);
        log_set_level(LOG_LEVEL_INFO);
        capture_start(&c);
        for (int t = 0; t < THREADS; t++) {
                w[t].id = t;
                if (pthread_create(&th[t], NULL, writer_thread, &w[t]) != 0)
                        abort();
        }
        for (int t = 0; t < THREADS; t++)
                pthread_join(th[t], NULL);
        out = capture_stop(&c);
        log_set_json(false);

        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                bool ok;

                n_lines++;
                if (json) {
                        char *msg = json_line_msg(line, strlen(line), "info");

                        ok = msg && message_ok(msg, strlen(msg), seen);
                        free(msg);
                } else {
                        const char *msg;

                        ok = text_line_ok(line, "info", &msg) && message_ok(msg, strlen(msg), seen);
                }
                if (!ok && n_bad++ < 3)
                        printf("# bad line (%zu bytes): %.200s\n", strlen(line), line);
        }
        for (int t = 0; t < THREADS; t++)
                for (int i = 0; i < LINES; i++)
                        n_missing += seen[t][i] != 1;
        tap_ok(n_lines == THREADS * LINES && n_bad == 0 && n_missing == 0,
               "%s: %d threads x %d lines logged at once come out as %zu whole lines, each once (%zu bad, %zu missing or repeated)",
               json ? "JSON" : "text", THREADS, LINES, n_lines, n_bad, n_missing);
        free(out);
}

static atomic_bool waiter_ready;

/*
 * Logs at debug until it sees the level another thread sets. The level can change between
 * the check and the call, so at most one "waiting" line gets through.
 */
static void *level_waiter(void *arg)
{
        atomic_store(&waiter_ready, true);
        while (log_get_level() != LOG_LEVEL_DEBUG) {
                log_debug("waiting");
                sched_yield();
        }
        log_debug("seen: debug");
        return NULL;
}

/*
 * POST /logging sets the level on the admin thread while the workers log: a level set by one
 * thread is seen by another, with no lock between them. (The waiter ends only once it sees
 * it; without atomics this is the data race TSan reports.)
 */
static void test_level_from_another_thread(void)
{
        enum log_level lvl = LOG_LEVEL_NONE;
        struct capture c;
        pthread_t th;
        char *out;

        log_set_level(LOG_LEVEL_INFO);
        capture_start(&c);
        if (pthread_create(&th, NULL, level_waiter, NULL) != 0)
                abort();
        while (!atomic_load(&waiter_ready))
                sched_yield();
        tap_ok(log_parse_output_level("default:debug", &lvl) == 0 && lvl == LOG_LEVEL_DEBUG,
               "\"default:debug\" parses to debug");
        log_set_level(lvl);
        pthread_join(th, NULL);
        out = capture_stop(&c);
        {
                size_t waiting = 0;

                for (const char *p = out; (p = strstr(p, "\tdebug\twaiting\n")); p++)
                        waiting++;
                tap_ok(strstr(out, "\tdebug\tseen: debug\n") && waiting <= 1,
                       "a level set on one thread is seen by another, which then logs at it (%zu debug lines before)",
                       waiting);
        }
        free(out);
        log_set_level(LOG_LEVEL_INFO);
}

/* errno survives a log call: callers log and then return -errno. */
static void test_errno_kept(void)
{
        struct capture c;
        char *out;

        capture_start(&c);
        errno = EPIPE;
        log_error("x");
        tap_ok(errno == EPIPE, "log_msg leaves errno as it was");
        out = capture_stop(&c);
        free(out);
}

int main(void)
{
        test_text_format();
        test_json_format();
        test_truncation();
        test_concurrent(false);
        test_concurrent(true);
        test_level_from_another_thread();
        test_errno_kept();
        return tap_done();
}
