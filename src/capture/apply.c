/*
 * The applier; see apply.h. Sequence: pick a backend per family, snapshot each family with
 * -save, decide everything from the snapshots (so a drift error touches nothing), run one
 * restore per family, read back and verify, then the TPROXY routes. Any failure after the
 * first write restores the snapshots of the tables written and removes routes added.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/apply.h"
#include "capture/backend.h"
#include "capture/plan.h"
#include "capture/restore.h"
#include "capture/route.h"
#include "capture/saved.h"
#include "capture/settings.h"
#include "capture/state.h"
#include "common/log.h"
#include "common/strbuf.h"

struct family_work {
        bool active;            /* this family is examined */
        bool wanted;            /* the plan has rules for it */
        struct backend backend;
        char *snapshot;         /* -save output before any change */
        struct saved cur;
        struct state_want want;
        char *input;            /* restore --noflush input, or NULL: nothing to do */
        struct strv tables;     /* tables the input writes */
        bool written;           /* a restore ran (possibly partially committed) */
        const char *what;       /* what happened, for the summary line */
        char *replaced;         /* with --reconcile: the differences replaced, for the summary; or NULL */
        char *lock_env;         /* "XTABLES_LOCKFILE=<netns path>" in CNI mode */
};

static const char *const family_names[] = { "IPv4", "IPv6" };

static void family_work_deinit(struct family_work *fw)
{
        free(fw->snapshot);
        saved_deinit(&fw->cur);
        state_want_deinit(&fw->want);
        free(fw->input);
        free(fw->replaced);
        strv_deinit(&fw->tables);
        free(fw->lock_env);
}

/* Puts every table the restore wrote back as the snapshot had it. */
static int rollback_family(struct family_work *fw, enum plan_family fam, struct strbuf *msg)
{
        struct strbuf in = STRBUF_NULL;
        char err[4096];
        int r;

        for (size_t i = 0; i < fw->tables.n; i++) {
                const struct saved_table *st = saved_find_table(&fw->cur, fw->tables.v[i]);
                if (st)
                        saved_render_table(st, &in);
                else
                        /* The table had nothing before: a non-noflush restore of it empties it. */
                        strbuf_printf(&in, "*%s\nCOMMIT\n", fw->tables.v[i]);
        }
        r = in.error ? in.error : backend_restore(&fw->backend, strbuf_str(&in), false, err, sizeof(err));
        if (r < 0)
                strbuf_printf(msg, "; rolling back %s FAILED, the namespace may hold partial rules: %s",
                              family_names[fam], in.error ? strerror(-in.error) : err);
        else
                strbuf_printf(msg, "; %s rolled back to its previous state", family_names[fam]);
        strbuf_deinit(&in);
        return r;
}

/* The plain restore input of the plan (Istio's text), and the tables it writes. */
static int render_plan(const struct plan *p, enum plan_family fam, struct strbuf *in, struct strv *ret_tables)
{
        for (const char *const *t = restore_tables; *t; t++)
                if (restore_plan_has_table(p, fam, *t))
                        strv_push(ret_tables, *t);
        return restore_render(p, fam, in);
}

static int prepare_family(const struct capture_settings *s, const struct plan *p, enum plan_family fam,
                          struct family_work *fw, struct strbuf *msg)
{
        char err[4096];
        struct strbuf in = STRBUF_NULL;
        int r;

        fw->backend.cni_mode = s->cni_mode;
        /* CNI mode: iptables-legacy >= 1.8.6 takes its lock on the namespace's file, so pods
         * set up in parallel do not wait on each other (Istio does the same). */
        if (s->cni_mode && s->network_namespace[0]) {
                if (asprintf(&fw->lock_env, "XTABLES_LOCKFILE=%s", s->network_namespace) < 0) {
                        fw->lock_env = NULL;
                        return -ENOMEM;
                }
                fw->backend.lockfile = fw->lock_env;
        }
        r = backend_detect(fam, s->force_iptables_binary, &fw->backend, err, sizeof(err));
        if (r < 0) {
                strbuf_printf(msg, "%s", err);
                return r;
        }
        log_debug("%s: using %s / %s", family_names[fam], fw->backend.save, fw->backend.restore);
        r = backend_save(&fw->backend, &fw->snapshot, err, sizeof(err));
        if (r < 0) {
                strbuf_printf(msg, "reading the current %s rules: %s", family_names[fam], err);
                return r;
        }
        r = saved_parse(fw->snapshot, &fw->cur);
        if (r < 0) {
                strbuf_printf(msg, "cannot parse the output of %s: %s", fw->backend.save, strerror(-r));
                return r;
        }
        if (fw->wanted) {
                r = state_want_build(p, fam, &fw->want, err, sizeof(err));
                if (r < 0) {
                        strbuf_printf(msg, "%s", err);
                        return r;
                }
        }

        if (s->cleanup_only) {
                r = state_build_replace(&fw->cur, &fw->want, NULL, fam, &in, &fw->tables);
                fw->what = in.len ? "rules removed" : "nothing to remove";
        } else if (s->force_apply) {
                /* Istio's semantics: apply without looking; fails if the chains exist. */
                r = render_plan(p, fam, &in, &fw->tables);
                fw->what = "rules applied";
        } else {
                struct strbuf diff = STRBUF_NULL;
                enum state_verdict v = state_compare(&fw->want, &fw->cur, &diff);

                switch (v) {
                case STATE_CLEAN:
                        r = render_plan(p, fam, &in, &fw->tables);
                        fw->what = "rules applied";
                        break;
                case STATE_IN_SYNC:
                        r = 0;
                        fw->what = "rules already in place, nothing changed";
                        break;
                case STATE_DRIFT:
                        if (!s->reconcile) {
                                strbuf_printf(msg, "the %s rules in this namespace differ from these settings "
                                                   "(rerun with --reconcile to replace them, or with --cleanup-only to remove them):\n%s",
                                              family_names[fam], strbuf_str(&diff));
                                strbuf_deinit(&diff);
                                return -EEXIST;
                        }
                        r = state_build_replace(&fw->cur, &fw->want, p, fam, &in, &fw->tables);
                        fw->what = "rules reconciled";
                        /* Library code does not log: the summary carries it to the command. */
                        fw->replaced = strbuf_steal(&diff);
                        break;
                }
                strbuf_deinit(&diff);
        }
        if (r < 0 || in.error) {
                strbuf_printf(msg, "building the %s restore input: %s", family_names[fam], strerror(-(r < 0 ? r : in.error)));
                strbuf_deinit(&in);
                return r < 0 ? r : in.error;
        }
        fw->input = in.len ? strbuf_steal(&in) : NULL;
        strbuf_deinit(&in);
        return 0;
}

/* Reads the family back and checks the kernel holds what was intended. */
static int verify_family(const struct capture_settings *s, struct family_work *fw, enum plan_family fam,
                         struct strbuf *msg)
{
        struct saved now = SAVED_NULL;
        struct strbuf diff = STRBUF_NULL;
        char *text = NULL, err[4096];
        int r;

        r = backend_save(&fw->backend, &text, err, sizeof(err));
        if (r < 0) {
                strbuf_printf(msg, "reading back the %s rules: %s", family_names[fam], err);
                return r;
        }
        r = saved_parse(text, &now);
        free(text);
        if (r < 0) {
                strbuf_printf(msg, "cannot parse the output of %s: %s", fw->backend.save, strerror(-r));
                return r;
        }
        if (s->cleanup_only) {
                if (state_has_ours(&fw->want, &now)) {
                        strbuf_printf(msg, "after removal the %s rules still hold ISTIO_ chains or pilotfish rules",
                                      family_names[fam]);
                        r = -EIO;
                }
        } else if (state_compare(&fw->want, &now, &diff) != STATE_IN_SYNC) {
                strbuf_printf(msg, "after applying, the %s rules read back differ from the plan:\n%s", family_names[fam],
                              strbuf_str(&diff));
                r = -EIO;
        }
        strbuf_deinit(&diff);
        saved_deinit(&now);
        return r;
}

int capture_apply(const struct capture_settings *s, const struct plan *p, char *err, size_t errlen)
{
        struct family_work fw[_PLAN_FAMILY_MAX] = { 0 };
        struct strbuf msg = STRBUF_NULL;
        struct route_undo undo = ROUTE_UNDO_NULL;
        struct route_tproxy tp = { .mark = s->mark, .table = s->route_table, .ipv6 = p->ipv6 };
        bool tproxy_routes = s->mode == CAPTURE_MODE_TPROXY && (s->inbound_all || s->inbound_port_list.n);
        char rerr[1024] = "";
        int r = 0;

        fw[PLAN_V4].active = fw[PLAN_V4].wanted = true;
        /* IPv6 is examined when its rules are wanted, and by cleanup whenever ip6tables works. */
        fw[PLAN_V6].wanted = p->ipv6;
        fw[PLAN_V6].active = p->ipv6 || s->cleanup_only;

        for (int f = 0; f < _PLAN_FAMILY_MAX; f++) {
                struct strbuf fmsg = STRBUF_NULL;

                if (!fw[f].active)
                        continue;
                r = prepare_family(s, p, (enum plan_family)f, &fw[f], &fmsg);
                if (r == -ENOENT && f == PLAN_V6 && s->cleanup_only) {
                        /* Cleanup of a family whose tools are missing: nothing of ours can be there. */
                        log_debug("IPv6: %s; skipping", strbuf_str(&fmsg));
                        fw[f].active = false;
                        r = 0;
                }
                if (r < 0) {
                        strbuf_printf(&msg, "nothing was changed: %s", strbuf_str(&fmsg));
                        strbuf_deinit(&fmsg);
                        goto out;
                }
                strbuf_deinit(&fmsg);
        }

        for (int f = 0; f < _PLAN_FAMILY_MAX; f++) {
                char rerr2[8192];

                if (!fw[f].active || !fw[f].input)
                        continue;
                log_debug("%s restore input:\n%s", family_names[f], fw[f].input);
                fw[f].written = true;
                r = backend_restore(&fw[f].backend, fw[f].input, true, rerr2, sizeof(rerr2));
                if (r < 0) {
                        strbuf_printf(&msg, "applying the %s rules with %s: %s", family_names[f], fw[f].backend.restore,
                                      rerr2);
                        goto rollback;
                }
                r = verify_family(s, &fw[f], (enum plan_family)f, &msg);
                if (r < 0)
                        goto rollback;
        }

        if (s->cleanup_only) {
                /* Both families, whatever IPv6 detection says now: what a run with IPv6 on
                 * added must go too. */
                struct route_tproxy all = tp;

                all.ipv6 = true;
                if (tproxy_routes || !s->capture_flags_given) {
                        r = route_tproxy_remove(&all, rerr, sizeof(rerr));
                        if (r < 0) {
                                strbuf_printf(&msg, "removing the TPROXY routes: %s", rerr);
                                goto rollback;
                        }
                }
                r = route_lo_ipv6_passthrough_remove(rerr, sizeof(rerr));
                if (r < 0) {
                        strbuf_printf(&msg, "removing ::6/128 from lo: %s", rerr);
                        goto rollback;
                }
        } else {
                if (tproxy_routes) {
                        r = route_tproxy_add(&tp, &undo, rerr, sizeof(rerr));
                        if (r < 0) {
                                strbuf_printf(&msg, "setting up TPROXY routing: %s", rerr);
                                goto rollback;
                        }
                }
                if (p->ipv6) {
                        r = route_lo_ipv6_passthrough_add(&undo, rerr, sizeof(rerr));
                        if (r < 0) {
                                strbuf_printf(&msg, "adding ::6/128 to lo for the inbound passthrough: %s", rerr);
                                goto rollback;
                        }
                }
        }

        for (int f = 0; f < _PLAN_FAMILY_MAX; f++)
                if (fw[f].active)
                        strbuf_printf(&msg, "%s%s: %s (%s)%s%s", msg.len ? "; " : "", family_names[f], fw[f].what,
                                      fw[f].backend.restore, fw[f].replaced ? ", replacing rules that differ:\n" : "",
                                      fw[f].replaced ? fw[f].replaced : "");
        r = 0;
        goto out;

rollback:
        if (route_undo_apply(&undo, rerr, sizeof(rerr)) < 0)
                strbuf_printf(&msg, "; removing the routes added FAILED: %s", rerr);
        for (int f = _PLAN_FAMILY_MAX - 1; f >= 0; f--)
                if (fw[f].written)
                        rollback_family(&fw[f], (enum plan_family)f, &msg);
out:
        snprintf(err, errlen, "%s", strbuf_str(&msg));
        strbuf_deinit(&msg);
        for (int f = 0; f < _PLAN_FAMILY_MAX; f++)
                family_work_deinit(&fw[f]);
        return r;
}
