/*
 * `pilotfish certs` (a CA and a serving certificate for the webhook's Service) and
 * `pilotfish webhook config` (the MutatingWebhookConfiguration with that CA). Both live in
 * pilotfish-webhook, the binary that links OpenSSL. See docs/cli/certs.md and
 * docs/cli/webhook.md.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/certs.h"
#include "common/readfile.h"
#include "common/strbuf.h"
#include "webhook/certs.h"
#include "webhook/registration.h"

/* The largest CA bundle read: it ends up in one object the API server stores (1.5 MiB at most). */
#define CA_BUNDLE_MAX (1u << 20)

static void certs_usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish certs --service NAME --namespace NS --out DIR [--days N]\n\n"
                   "Creates a CA and a serving certificate for the Service NAME in NS (DNS names NAME,\n"
                   "NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local) as DIR/ca.crt, DIR/tls.crt and DIR/tls.key.\n\n"
                   "  --service NAME     the webhook's Service (default pilotfish-webhook)\n"
                   "  --namespace NS     its namespace (default istio-system)\n"
                   "  --out DIR          where to write; created if missing (required)\n"
                   "  --days N           validity of both certificates, default 365\n"
                   "  -h, --help         this text\n");
}

static int days_arg(const char *v, unsigned *ret)
{
        char *end;
        unsigned long n = strtoul(v, &end, 10);

        if (!*v || *end || n == 0 || n > 36500) {
                fprintf(stderr, "Error: --days: '%s' is not a number of days in 1..36500\n", v);
                return -1;
        }
        *ret = (unsigned)n;
        return 0;
}

/* A DNS label: what a Service and a namespace name must be. */
static bool dns_label(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int certs_main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "service", required_argument, NULL, 's' },
                { "namespace", required_argument, NULL, 'n' },
                { "out", required_argument, NULL, 'o' },
                { "days", required_argument, NULL, 'd' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        const char *service = "pilotfish-webhook", *ns = "istio-system", *out = NULL;
        unsigned days = 365;
        char err[1024];
        int opt;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 's': service = optarg; break;
                case 'n': ns = optarg; break;
                case 'o': out = optarg; break;
                case 'd':
                        if (days_arg(optarg, &days) < 0)
                                return 1;
                        break;
                case 'h': certs_usage(stdout); return 0;
                default:
                        fprintf(stderr, "Error: unknown or incomplete option %s\n\n", argv[optind - 1]);
                        certs_usage(stderr);
                        return 1;
                }
        }
        if (optind < argc || !out) {
                fprintf(stderr, "Error: %s\n\n", optind < argc ? "unexpected argument" : "--out DIR is required");
                certs_usage(stderr);
                return 1;
        }
        if (!dns_label(service) || !dns_label(ns)) {
                fprintf(stderr, "Error: '%s' is not a DNS label (lower case letters, digits, '-', at most 63)\n",
                        dns_label(service) ? ns : service);
                return 1;
        }
        if (certs_make(service, ns, out, days, err, sizeof(err)) < 0) {
                fprintf(stderr, "Error: %s\n", err);
                return 1;
        }
        printf("wrote %s/ca.crt, %s/tls.crt and %s/tls.key for %s.%s.svc, valid %u days\n", out, out, out, service, ns,
               days);
        return 0;
}

int webhook_config_main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "ca-bundle", required_argument, NULL, 'c' },
                { "service", required_argument, NULL, 's' },
                { "namespace", required_argument, NULL, 'n' },
                { "name", required_argument, NULL, 'N' },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct registration r = { .name = "pilotfish-sidecar-injector", .service = "pilotfish-webhook",
                                  .ns = "istio-system", .timeout_s = 10 };
        struct strbuf out = STRBUF_NULL;
        const char *ca_path = NULL;
        char *ca, why[128];
        size_t ca_len;
        int opt, n;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                char *end;
                switch (opt) {
                case 'c': ca_path = optarg; break;
                case 's': r.service = optarg; break;
                case 'n': r.ns = optarg; break;
                case 'N': r.name = optarg; break;
                case 't':
                        r.timeout_s = (unsigned)strtoul(optarg, &end, 10);
                        if (!*optarg || *end || r.timeout_s < 1 || r.timeout_s > 30) {
                                fprintf(stderr, "Error: --timeout: '%s' (the API server allows 1..30 seconds)\n", optarg);
                                return 1;
                        }
                        break;
                case 'h':
                        printf("Usage: pilotfish webhook config --ca-bundle FILE [--service NAME] [--namespace NS]\n"
                               "                                [--name NAME] [--timeout S]\n");
                        return 0;
                default:
                        fprintf(stderr, "Error: unknown or incomplete option %s\n", argv[optind - 1]);
                        return 1;
                }
        }
        if (!ca_path) {
                fprintf(stderr, "Error: --ca-bundle FILE is required (the CA that signed the webhook's certificate)\n");
                return 1;
        }
        n = readfile_path(ca_path, CA_BUNDLE_MAX, &ca, &ca_len, NULL);
        if (n < 0) {
                fprintf(stderr, "Error: reading %s: %s\n", ca_path, readfile_strerror(n, CA_BUNDLE_MAX, why, sizeof(why)));
                return 1;
        }
        if (!strstr(ca, "-----BEGIN CERTIFICATE-----")) {
                fprintf(stderr, "Error: %s holds no PEM certificate\n", ca_path);
                free(ca);
                return 1;
        }
        r.ca_pem = ca;
        r.ca_len = ca_len;
        registration_yaml(&r, &out);
        n = out.error ? 0 : 1;
        if (n)
                fputs(strbuf_str(&out), stdout);
        else
                fprintf(stderr, "Error: out of memory\n");
        free(ca);
        strbuf_deinit(&out);
        return n ? 0 : 1;
}
