/*
 * Renders a plan as iptables-restore input, exactly as Istio does (SEMANTICS.md section 9):
 * tables in alphabetical order, "* table" header, -N for user chains in order of first use
 * then for undeclared jump targets, the rules in emission order, COMMIT.
 */
#pragma once

#include "capture/plan.h"

struct strbuf;

/* Appends the restore text for one family of `p` to `out`. Returns 0 or a negative errno. */
int restore_render(const struct plan *p, enum plan_family fam, struct strbuf *out);

/*
 * Appends one table's body (no header, no COMMIT): -N lines for the user chains the plan uses,
 * except those named in `exists` (may be NULL), then the rules. Used to build a combined
 * removal-and-install transaction.
 */
struct strv;
int restore_render_table_body(const struct plan *p, enum plan_family fam, const char *table,
                              const struct strv *exists, struct strbuf *out);
/* True when the plan has a rule in `table` for `fam`. */
bool restore_plan_has_table(const struct plan *p, enum plan_family fam, const char *table);

/* The fixed table order of the restore input. NULL-terminated. */
extern const char *const restore_tables[];
