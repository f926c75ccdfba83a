/*
 * `pilotfish iptables` (also run as istio-iptables): settings from env and flags, the pure
 * plan, then either the dry-run text or the applier. The only place this command logs.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture/apply.h"
#include "capture/plan.h"
#include "capture/restore.h"
#include "capture/settings.h"
#include "capture/validate.h"
#include "cmd/iptables.h"
#include "common/log.h"
#include "common/strbuf.h"

extern char **environ;

static int dry_run_text(const struct plan *p, struct strbuf *out)
{
        strbuf_puts(out, "# iptables-restore\n");
        restore_render(p, PLAN_V4, out);
        if (p->ipv6) {
                strbuf_puts(out, "# ip6tables-restore\n");
                restore_render(p, PLAN_V6, out);
        }
        return out->error;
}

static int enter_netns(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        if (fd < 0) {
                log_error("opening network namespace %s: %s", path, strerror(errno));
                return -errno;
        }
        if (setns(fd, CLONE_NEWNET) < 0) {
                int r = -errno;
                log_error("entering network namespace %s: %s", path, strerror(errno));
                close(fd);
                return r;
        }
        close(fd);
        return 0;
}

int iptables_main(int argc, char **argv)
{
        struct capture_settings s;
        struct plan p = PLAN_NULL;
        char err[8192] = "";
        enum log_level lvl;
        int r, ret = 1;

        r = capture_settings_init(&s);
        if (r >= 0)
                r = capture_settings_load_env(&s, environ);
        if (r < 0) {
                log_error("reading the environment: %s", strerror(-r));
                goto out;
        }
        r = capture_settings_parse_args(&s, argc, argv, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "Error: %s\n\n", err);
                capture_settings_usage(stderr);
                goto out;
        }
        if (s.help) {
                capture_settings_usage(stdout);
                ret = 0;
                goto out;
        }
        log_set_json(s.log_as_json);
        if (log_parse_output_level(s.log_output_level, &lvl) == 0)
                log_set_level(lvl);
        for (size_t i = 0; i < s.warnings.n; i++)
                log_warn("%s", s.warnings.v[i]);

        /* Enter the namespace first: IPv6 detection reads its addresses. */
        if (s.network_namespace[0] && enter_netns(s.network_namespace) < 0)
                goto out;

        r = capture_settings_resolve(&s, err, sizeof(err));
        if (r < 0) {
                log_error("invalid settings, nothing applied: %s", err);
                goto out;
        }
        r = plan_build(&s, &p);
        if (r < 0) {
                log_error("building the rules: %s", strerror(-r));
                goto out;
        }
        if (p.dns_requested_without_servers)
                log_warn("--redirect-dns is set but %s names no DNS server: DNS is not captured", s.resolv_conf);

        if (s.dry_run) {
                struct strbuf out = STRBUF_NULL;

                if (dry_run_text(&p, &out) < 0) {
                        log_error("rendering the rules: %s", strerror(-out.error));
                        strbuf_deinit(&out);
                        goto out;
                }
                fputs(strbuf_str(&out), stdout);
                if (s.dry_run_file) {
                        FILE *f = fopen(s.dry_run_file, "we");
                        if (!f || fputs(strbuf_str(&out), f) < 0 || fclose(f) != 0) {
                                log_error("writing the dry run to %s: %s", s.dry_run_file, strerror(errno));
                                strbuf_deinit(&out);
                                goto out;
                        }
                }
                strbuf_deinit(&out);
                ret = 0;
                goto out;
        }

        if (!s.skip_rule_apply) {
                r = capture_apply(&s, &p, err, sizeof(err));
                if (r < 0) {
                        log_error("%s", err);
                        goto out;
                }
                log_info("%s", err[0] ? err : "done");
        }

        if (s.run_validation && !s.cleanup_only) {
                r = validate_run(&s, err, sizeof(err));
                if (r < 0) {
                        log_error("validation failed: %s", err);
                        ret = 126;
                        goto out;
                }
                log_info("validation passed: %s", err);
        }
        ret = 0;
out:
        plan_deinit(&p);
        capture_settings_deinit(&s);
        return ret;
}
