/*
 * stderr logger. Text lines carry an RFC 3339 timestamp and the level, as Istio's do, so log
 * scrapers written for istio-init keep working; JSON lines carry the same three fields.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

static enum log_level log_level_current = LOG_LEVEL_INFO;
static bool log_json;

static const char *const log_level_names[] = {
        [LOG_LEVEL_NONE] = "none",
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARN] = "warn",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level) { log_level_current = level; }
enum log_level log_get_level(void) { return log_level_current; }
void log_set_json(bool json) { log_json = json; }

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
        enum log_level level = log_level_current;
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

static void log_json_string(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c < 0x20)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
        fputc('"', f);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
        char msg[4096], ts[96];
        struct timespec now;
        struct tm tm;
        va_list ap;

        if (level > log_level_current || level == LOG_LEVEL_NONE)
                return;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000);

        if (log_json) {
                fprintf(stderr, "{\"level\":\"%s\",\"time\":\"%s\",\"msg\":", log_level_names[level], ts);
                log_json_string(stderr, msg);
                fputs("}\n", stderr);
        } else {
                fprintf(stderr, "%s\t%s\t%s\n", ts, log_level_names[level], msg);
        }
}
