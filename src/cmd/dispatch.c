/*
 * Subcommand dispatch and top-level help. A link named istio-iptables runs `iptables`, so the
 * init container args of Istio's injection template work unchanged; `istio-iptables` is also
 * accepted as a subcommand name for images whose entrypoint is pilotfish itself.
 */
#include <stdio.h>
#include <string.h>

#include "cmd/dispatch.h"
#include "cmd/inject.h"
#include "cmd/iptables.h"
#include "cmd/proxy.h"
#include "cmd/wait.h"
#include "config.h"

static const struct subcommand subcommands[] = {
        { "iptables", iptables_main, "program the pod's packet filter to capture traffic (istio-iptables)" },
        { "proxy", proxy_main, "the sidecar: relay captured connections, serve health and metrics" },
        { "inject", inject_main, "add the sidecar to Kubernetes workloads (istioctl kube-inject)" },
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
