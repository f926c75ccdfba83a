/*
 * A parsed `iptables-save` / `ip6tables-save` dump: tables, their chains with policies, and
 * each chain's rules as the kernel prints them. This is the "live" side of the state check
 * (compared with canon_rule() output by string equality) and the snapshot a failed apply
 * rolls back to (saved_render_table() feeds a non-noflush restore).
 *
 * Both iptables-legacy-save and iptables-nft-save print the same grammar: '#' comment lines
 * (timestamps, "# Warning: iptables-legacy tables present"), "*table", ":CHAIN POLICY
 * [pkts:bytes]" (counters optional), "-A CHAIN spec", "COMMIT". The parser is strict about
 * that structure, so a truncated or garbled dump is refused rather than half-understood, and
 * it is bounded and non-recursive because its input comes from another program.
 */
#pragma once

#include <stddef.h>

#include "common/strv.h"

struct strbuf;

/* Limits; exceeding one is -EBADMSG. Far above what a pod network namespace holds. */
#define SAVED_MAX_TABLES 32
#define SAVED_MAX_CHAINS 65536  /* per table */

struct saved_chain {
        char *name;
        char *policy;           /* "ACCEPT"/"DROP" for builtin chains, "-" for user chains */
        struct strv rules;      /* rule specs in file order, without the leading "-A CHAIN " */
};

struct saved_table {
        char *name;
        struct saved_chain *chains;     /* in the order of their ':' declarations */
        size_t n_chains;
};

struct saved {
        struct saved_table *tables;     /* in file order */
        size_t n_tables;
};

#define SAVED_NULL { .tables = NULL, .n_tables = 0 }

/*
 * Parses a whole dump. Accepts blank lines, '#' comments anywhere, "* nat" as well as "*nat",
 * the "[pkts:bytes]" counters after a policy and in front of a rule (iptables-save -c), and an
 * "-A" for a chain that was never declared (it is created with policy "-"). Refuses, with
 * -EBADMSG: anything outside a table other than comments, a table that is not closed by
 * COMMIT, a table or chain declared twice, an unknown line, and the limits above. Returns 0
 * with *ret filled (release with saved_deinit()), -EBADMSG, or -ENOMEM; on error *ret is
 * left as SAVED_NULL.
 */
int saved_parse(const char *text, struct saved *ret);
void saved_deinit(struct saved *s);

/* Lookups by exact name; NULL when absent. The results point into s / t. */
const struct saved_table *saved_find_table(const struct saved *s, const char *name);
const struct saved_chain *saved_find_chain(const struct saved_table *t, const char *name);

/*
 * Appends one table as iptables-restore input to out: "*nat", ":CHAIN POLICY [0:0]" per chain,
 * every "-A CHAIN spec" line chain by chain, "COMMIT". Fed to a restore WITHOUT --noflush it
 * replaces the table with exactly this content, which is how a table is rolled back to a
 * snapshot. Returns 0 or the strbuf error (-ENOMEM, -ENOBUFS).
 */
int saved_render_table(const struct saved_table *t, struct strbuf *out);
