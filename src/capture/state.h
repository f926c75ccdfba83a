/*
 * The live state versus the plan, decided on parsed iptables-save output (pure: no I/O).
 *
 * "Ours" in a live table means: every ISTIO_* chain; in any other chain, every rule that
 * jumps to an ISTIO_* chain, that equals a rule of the plan, or that has the shape of a rule
 * pilotfish writes into a builtin chain (exclude-interface RETURNs, the TPROXY mark rules).
 * Rules are compared in the kernel's canonical text (capture/canon.c), so "-p tcp --dport 1"
 * and "-p tcp -m tcp --dport 1" are the same rule.
 *
 * From that, three verdicts: clean (nothing of ours), in sync (ours equals the plan, in
 * order), drift (anything else, with a readable difference); and the restore input that
 * removes ours, optionally followed by the plan, as one transaction per family.
 */
#pragma once

#include <stdbool.h>

#include "capture/plan.h"
#include "common/strv.h"

struct saved;
struct strbuf;

/* The plan for one family as the kernel will print it: per table and chain, in final order. */
struct state_chain {
        char *table;
        char *chain;
        struct strv rules;      /* canonical specs */
};

struct state_want {
        struct state_chain *v;
        size_t n;
};

#define STATE_WANT_NULL { .v = NULL, .n = 0 }

/* Returns 0, or -EINVAL with the rule canon could not read in err. */
int state_want_build(const struct plan *p, enum plan_family fam, struct state_want *ret, char *err,
                     size_t errlen);
void state_want_deinit(struct state_want *w);

enum state_verdict {
        STATE_CLEAN = 0,
        STATE_IN_SYNC,
        STATE_DRIFT,
};

/* Compares; on drift, appends one line per difference (at most a screenful) to diff. */
enum state_verdict state_compare(const struct state_want *w, const struct saved *cur, struct strbuf *diff);

/* True when cur holds anything of ours beyond what `w` (may be NULL) wants. */
bool state_has_ours(const struct state_want *w, const struct saved *cur);

/*
 * Builds iptables-restore --noflush input that deletes everything of ours in cur and, when p
 * is not NULL, installs p's rules for fam in the same per-table transaction. Tables that need
 * no change are left out. Appends to out; *ret_tables gets the names of the tables it
 * touches (for rollback). Returns 0 or a negative errno.
 */
int state_build_replace(const struct saved *cur, const struct state_want *w, const struct plan *p,
                        enum plan_family fam, struct strbuf *out, struct strv *ret_tables);
