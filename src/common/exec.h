/*
 * Runs a helper program (iptables-restore, iptables-save) with optional stdin text and
 * collects its stdout and stderr. The iptables binaries are the one piece of the kernel
 * interface pilotfish drives through a program rather than a library: xtables has no stable
 * library API, and iptables-restore is what gives per-table atomic commits.
 */
#pragma once

#include <stdbool.h>

struct exec_result {
        int status;     /* exit code, or 128+signal */
        char *out;      /* stdout, NUL-terminated, owned */
        char *err;      /* stderr, NUL-terminated, owned */
};

#define EXEC_RESULT_NULL { .status = -1, .out = NULL, .err = NULL }

struct exec_options {
        const char *stdin_text;         /* fed to the child's stdin, or NULL for /dev/null */
        const char *const *env_extra;   /* "KEY=VALUE" items added to the environment, or NULL */
        bool private_mounts;            /* --cni-mode sandbox: private mount ns, nsswitch hidden */
};

/*
 * Runs argv[0] (looked up in PATH) and waits for it. Returns 0 when the program ran (whatever
 * its exit status, which is in ret->status), or a negative errno when it could not be started
 * (-ENOENT: not found). ret is filled in either case and must be released with
 * exec_result_deinit().
 */
int exec_run(const char *const *argv, const struct exec_options *opts, struct exec_result *ret);
void exec_result_deinit(struct exec_result *r);

/* Joins argv for messages: "iptables-restore --noflush". Caller frees. */
char *exec_argv_join(const char *const *argv);
