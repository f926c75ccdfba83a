/*
 * Carrying a plan out on the live namespace, with the guarantees Istio lacks:
 *  - atomic: every family and the TPROXY routes succeed, or the namespace is put back exactly
 *    as it was (rules restored from a snapshot taken first, routes removed);
 *  - idempotent: rules that already match the plan are left alone; rules that differ are an
 *    error naming the difference, or, with --reconcile, replaced in one restore transaction
 *    per family so no packet sees a half-programmed table;
 *  - verified: after applying, the kernel's rules are read back and compared with the plan.
 * The decisions (what to remove, what to add) are made on parsed iptables-save output by
 * capture/state.c; this file only sequences I/O.
 */
#pragma once

#include <stddef.h>

struct capture_settings;
struct plan;

/*
 * Applies (or, with s->cleanup_only, removes) the rules of `p` and the TPROXY routes.
 * Returns 0 with a summary for the log in err (per family what happened and with which
 * backend, and with --reconcile the differences replaced), or a negative errno with the
 * whole story in err: what failed, on which rule, the backend's message, and whether the
 * rollback succeeded. Logs nothing above debug: the caller reports.
 */
int capture_apply(const struct capture_settings *s, const struct plan *p, char *err, size_t errlen);
