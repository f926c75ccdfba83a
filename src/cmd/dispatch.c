/*
 * Subcommand dispatch and top-level help. A link named istio-iptables runs `iptables`, so the
 * init container args of Istio's injection template work unchanged; `istio-iptables` is also
 * accepted as a subcommand name for images whose entrypoint is pilotfish itself.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/dispatch.h"
#include "cmd/inject.h"
#include "cmd/iptables.h"
#include "cmd/proxy.h"
#include "cmd/wait.h"
#include "config.h"

/*
 * `pilotfish webhook` and `pilotfish certs` run pilotfish-webhook from this binary's directory,
 * with the subcommand as its first argument: only the webhook links OpenSSL, so the proxy,
 * which runs in every pod, does not map it.
 */
static int webhook_exec(int argc, char **argv)
{
        char self[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash, **args;

        if (n <= 0) {
                fprintf(stderr, "pilotfish webhook: finding this binary (/proc/self/exe): %s\n", strerror(errno));
                return 1;
        }
        self[n] = '\0';
        slash = strrchr(self, '/');
        snprintf(path, sizeof(path), "%.*s/pilotfish-webhook", slash ? (int)(slash - self) : 1, slash ? self : ".");
        args = calloc((size_t)argc + 2, sizeof(*args));
        if (!args) {
                fprintf(stderr, "pilotfish webhook: out of memory\n");
                return 1;
        }
        args[0] = path;
        for (int i = 0; i < argc; i++)
                args[i + 1] = argv[i];
        execv(path, args);
        fprintf(stderr, "pilotfish webhook: running %s (installed beside pilotfish): %s\n", path, strerror(errno));
        free(args);
        return 1;
}

static const struct subcommand subcommands[] = {
        { "iptables", iptables_main, "program the pod's packet filter to capture traffic (istio-iptables)" },
        { "proxy", proxy_main, "the sidecar: relay captured connections, serve health and metrics" },
        { "inject", inject_main, "add the sidecar to Kubernetes workloads (istioctl kube-inject)" },
        { "webhook", webhook_exec, "the admission webhook: injects every pod the API server sends (HTTPS)" },
        { "certs", webhook_exec, "a CA and a serving certificate for the webhook's Service" },
        { "wait", wait_main, "wait until the proxy is ready (a postStart hook; pilot-agent wait)" },
};

static const struct {
        const char *alias;
        const char *name;
} aliases[] = {
        { "istio-iptables", "iptables" },
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish SUBCOMMAND [ARGS...]\n\n"
                   "pilotfish is a sidecar service mesh data plane, a drop-in for Istio's sidecar parts.\n\n"
                   "Subcommands:\n");
        for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
                fprintf(f, "  %-12s %s\n", subcommands[i].name, subcommands[i].help);
        fprintf(f, "\n  pilotfish SUBCOMMAND --help   options of one subcommand\n"
                   "  pilotfish --version           print the version\n");
}

static const struct subcommand *find(const char *name)
{
        for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
                if (strcmp(name, aliases[i].alias) == 0)
                        name = aliases[i].name;
        for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
                if (strcmp(name, subcommands[i].name) == 0)
                        return &subcommands[i];
        return NULL;
}

int dispatch_main(int argc, char **argv)
{
        const char *self = argc > 0 && argv[0] ? argv[0] : "pilotfish";
        const char *base = strrchr(self, '/');
        const struct subcommand *sc;

        base = base ? base + 1 : self;
        if (strcmp(base, "pilotfish") != 0 && (sc = find(base)))
                return sc->fn(argc, argv);

        if (argc < 2) {
                usage(stderr);
                return 1;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
                printf("pilotfish %s\n", PILOTFISH_VERSION);
                return 0;
        }
        sc = find(argv[1]);
        if (!sc) {
                fprintf(stderr, "pilotfish: unknown subcommand \"%s\"\n\n", argv[1]);
                usage(stderr);
                return 1;
        }
        return sc->fn(argc - 1, argv + 1);
}
