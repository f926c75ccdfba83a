/*
 * Fuzz target for `pilotfish iptables`' command line and environment: the whole path from
 * text to iptables-restore input (capture_settings_* -> plan_build -> restore_render),
 * without touching the system.
 *
 * Input format: the data is split into items on NUL bytes if it contains any, otherwise on
 * newlines (so corpus files stay readable and NUL-separated ones can carry newlines inside a
 * value). One trailing separator is ignored. Leading items of the form NAME=VALUE (NAME of
 * [A-Za-z_][A-Za-z0-9_]*, at most 32) are the environment; the remaining items are the
 * arguments after "iptables".
 *
 * When the arguments parse, "--ipv6=false --resolv-conf=/dev/null" is parsed on top, so
 * resolve never scans the host's addresses or reads the real resolv.conf. The target then
 * checks what must hold for any accepted input: the v4 restore text has a nat table, every
 * line is a table header, -N, -A, -I or COMMIT (a value that smuggled a newline or rule
 * text past validation would break this), and the v6 text is empty with IPv6 off. A broken
 * invariant aborts, so the fuzzer reports it like a crash.
 *
 * Logging is off unless PILOTFISH_FUZZ_LOG is set (the positional-argument warning would
 * flood libFuzzer's output).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/plan.h"
#include "capture/restore.h"
#include "capture/settings.h"
#include "common/log.h"
#include "common/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENV 32

static bool is_env_item(const char *s)
{
        const char *p = s;

        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_'))
                return false;
        for (p++; *p && *p != '='; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return *p == '=';
}

/* Every line must be one restore can take; anything else means a value leaked into the text. */
static void check_restore_text(const char *text)
{
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");

                if (!(strncmp(p, "* ", 2) == 0 || strncmp(p, "-N ISTIO_", 9) == 0 || strncmp(p, "-A ", 3) == 0 ||
                      strncmp(p, "-I ", 3) == 0 || (n == 6 && strncmp(p, "COMMIT", 6) == 0))) {
                        fprintf(stderr, "unexpected restore line: \"%.*s\"\n", (int)n, p);
                        abort();
                }
                if (p[n] != '\n') {
                        fprintf(stderr, "restore text does not end with a newline\n");
                        abort();
                }
                p += n + 1;
        }
}

static void run(char *const *env, int argc, char *const *argv)
{
        static char *const forced[] = { (char *)"iptables", (char *)"--ipv6=false", (char *)"--resolv-conf=/dev/null",
                                        NULL };
        struct capture_settings s;
        struct plan p = PLAN_NULL;
        struct strbuf v4 = STRBUF_NULL, v6 = STRBUF_NULL;
        char err[1024];
        int r;

        if (capture_settings_init(&s) < 0 || capture_settings_load_env(&s, env) < 0 || capture_settings_parse_args(&s, argc, argv, err, sizeof(err)) < 0)
                goto out;
        r = capture_settings_parse_args(&s, 3, forced, err, sizeof(err));
        if (r == -EINVAL) {
                fprintf(stderr, "the forced arguments did not parse: %s\n", err);
                abort();
        }
        if (r < 0)
                goto out;
        if (capture_settings_resolve(&s, err, sizeof(err)) < 0)
                goto out;
        if (plan_build(&s, &p) < 0)
                goto out;
        if (restore_render(&p, PLAN_V4, &v4) == 0 && restore_render(&p, PLAN_V6, &v6) == 0) {
                if (!strstr(strbuf_str(&v4), "* nat\n") || strbuf_str(&v6)[0] != '\0') {
                        fprintf(stderr, "v4 text without nat, or v6 text with IPv6 off\n");
                        abort();
                }
                check_restore_text(strbuf_str(&v4));
        }
out:
        strbuf_deinit(&v4);
        strbuf_deinit(&v6);
        plan_deinit(&p);
        capture_settings_deinit(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static bool log_set;
        char sep = size && memchr(data, '\0', size) ? '\0' : '\n';
        char *buf, **items, *env[MAX_ENV + 1], **argv;
        size_t n_items = 0, start = 0, n_env = 0;
        int argc = 1;

        if (!log_set) {
                log_set_level(getenv("PILOTFISH_FUZZ_LOG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_NONE);
                log_set = true;
        }

        /* A private NUL-terminated copy, cut into items in place. */
        buf = malloc(size + 1);
        items = calloc(size + 2, sizeof(char *));
        argv = calloc(size + 3, sizeof(char *));
        if (!buf || !items || !argv)
                goto out;
        if (size)
                memcpy(buf, data, size);
        buf[size] = '\0';
        for (size_t i = 0; i <= size; i++)
                if (i == size || buf[i] == sep) {
                        /* One trailing separator does not make an extra empty item. */
                        if (i == size && start == size && size > 0)
                                break;
                        buf[i] = '\0';
                        items[n_items++] = buf + start;
                        start = i + 1;
                }
        if (size == 0)
                n_items = 0;

        {
                size_t i = 0;
                for (; i < n_items && n_env < MAX_ENV && is_env_item(items[i]); i++)
                        env[n_env++] = items[i];
                env[n_env] = NULL;
                argv[0] = (char *)"iptables";
                for (; i < n_items; i++)
                        argv[argc++] = items[i];
                argv[argc] = NULL;
        }
        run(env, argc, argv);
out:
        free(argv);
        free(items);
        free(buf);
        return 0;
}
