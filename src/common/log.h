/*
 * Logging to stderr for the command-line edge. Library code logs at debug at most; the
 * subcommand that owns the process logs failures once. Levels and the --log_output_level
 * syntax follow Istio's log scopes ("default:info,scope:debug") so the injector's flags work
 * unchanged; JSON output (--log_as_json) prints one object per line.
 *
 * Safe from any thread: the level and the format may be changed while other threads log
 * (the proxy's admin thread serves POST /logging), and each line reaches stderr in one
 * write(2), so lines from different threads do not interleave (see log.c for the limits).
 */
#pragma once

#include <stdbool.h>

enum log_level {
        LOG_LEVEL_NONE = 0,
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARN,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

/*
 * The longest line written, newline included. A longer message is cut at a whole character
 * (and, in JSON, a whole escape) and ends with " [truncated]", so the line stays one line and
 * a JSON line still parses. Twice the old 4096-byte message limit; both buffers are on the
 * caller's stack (16 KiB, well inside a webhook thread's 256 KiB).
 */
#define LOG_LINE_MAX 8192

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_json(bool json);

/*
 * Parses Istio's --log_output_level value: comma-separated "scope:level" items, level one of
 * debug, info, warn, error, none. The "default" scope (or a bare level) sets pilotfish's level.
 * Returns 0, or -EINVAL for an unknown level (the caller echoes the value).
 */
int log_parse_output_level(const char *spec, enum log_level *ret_level);

/* Writes one line at level, if the current level lets it through. Keeps errno. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
