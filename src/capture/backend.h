/*
 * Which iptables variant programs each family, and running its -save and -restore. Selection
 * follows Istio (SEMANTICS.md section 12): a forced variant, else iptables-legacy when it
 * already holds rules in this namespace, else iptables-nft, else the plain binary. Unlike
 * Istio, detection never writes a probe rule: the namespace must stay exactly as it was when
 * the command fails.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "capture/plan.h"

struct backend {
        char variant[8];        /* "legacy", "nft" */
        char save[40];          /* e.g. "ip6tables-legacy-save" */
        char restore[40];
        bool wait;              /* legacy >= 1.6.2 takes the xtables lock: pass --wait=30 */
        bool cni_mode;          /* run in a private mount namespace */
        const char *lockfile;   /* XTABLES_LOCKFILE in CNI mode, or NULL */
};

/*
 * Picks the variant for `fam`. forced: "", "legacy" or "nft". Returns 0, or a negative errno
 * with the reason in err (forced variant missing, no variant usable).
 */
int backend_detect(enum plan_family fam, const char *forced, struct backend *ret, char *err, size_t errlen);

/* Runs -save; *ret_text is malloc'd. Returns 0 or a negative errno with the reason in err. */
int backend_save(const struct backend *b, char **ret_text, char *err, size_t errlen);

/*
 * Feeds `input` to -restore, with --noflush when noflush. Returns 0, or -EIO with the
 * command and the backend's own message (its stderr, which names the failing line) in err.
 */
int backend_restore(const struct backend *b, const char *input, bool noflush, char *err, size_t errlen);
