/*
 * `pilotfish certs` (a CA and a serving certificate for the webhook's Service) and
 * `pilotfish webhook config` (the MutatingWebhookConfiguration with that CA). Both live in
 * pilotfish-webhook, the binary that links OpenSSL. See docs/cli/certs.md and
 * docs/cli/webhook.md.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/certs.h"
#include "common/flags.h"
#include "common/readfile.h"
#include "common/strbuf.h"
#include "webhook/certs.h"
#include "webhook/registration.h"

/* The largest CA bundle read: it ends up in one object the API server stores (1.5 MiB at most). */
#define CA_BUNDLE_MAX (1u << 20)

struct certs_args {
        const char *service, *ns, *out;
        unsigned days;
        bool help;
};

#define O(f) offsetof(struct certs_args, f)
static const struct flags_opt certs_opts[] = {
        { .name = "service", .metavar = "NAME", .def = "pilotfish-webhook", .offset = O(service),
          .help = "the webhook's Service" },
        { .name = "namespace", .metavar = "NS", .def = "istio-system", .offset = O(ns), .help = "its namespace" },
        { .name = "out", .metavar = "DIR", .offset = O(out), .help = "where to write; created if missing (required)" },
        { .name = "days", .metavar = "N", .def = "365", .set = flags_set_uint, .offset = O(days), .min = 1,
          .max = 36500, .help = "validity of both certificates" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "this text" },
};
#undef O
static const struct flags_table certs_table = FLAGS_TABLE(certs_opts, 0, NULL);

static void certs_usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish certs --service NAME --namespace NS --out DIR [--days N]\n\n"
                   "Creates a CA and a serving certificate for the Service NAME in NS (DNS names NAME,\n"
                   "NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local) as DIR/ca.crt, DIR/tls.crt and DIR/tls.key.\n\n");
        flags_usage(&certs_table, f);
}

struct config_args {
        struct registration r;
        const char *ca_path;
        bool help;
};

#define O(f) offsetof(struct config_args, f)
static const struct flags_opt config_opts[] = {
        { .name = "ca-bundle", .metavar = "FILE", .offset = O(ca_path),
          .help = "the CA that signed the webhook's certificate (required)" },
        { .name = "service", .metavar = "NAME", .def = "pilotfish-webhook", .offset = O(r.service),
          .help = "the webhook's Service" },
        { .name = "namespace", .metavar = "NS", .def = "istio-system", .offset = O(r.ns), .help = "its namespace" },
        { .name = "name", .metavar = "NAME", .def = "pilotfish-sidecar-injector", .offset = O(r.name),
          .help = "the MutatingWebhookConfiguration's name" },
        { .name = "timeout", .metavar = "S", .def = "10", .set = flags_set_uint, .offset = O(r.timeout_s), .min = 1,
          .max = 30, .help = "the API server's timeout for one call (it allows 1..30 seconds)" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "this text" },
};
#undef O
static const struct flags_table config_table = FLAGS_TABLE(config_opts, 0, NULL);

static void config_usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish webhook config --ca-bundle FILE [flags]\n\n"
                   "Prints the MutatingWebhookConfiguration that registers the webhook, with FILE as its CA bundle.\n\n");
        flags_usage(&config_table, f);
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
        struct certs_args a = { .service = "pilotfish-webhook", .ns = "istio-system", .days = 365 };
        const char *service, *ns, *out;
        unsigned days;
        char err[1024];
        int r = flags_parse_main(&certs_table, &a, argc, argv, &a.help, certs_usage);

        if (r != 0)
                return r < 0 ? 1 : 0;
        service = a.service;
        ns = a.ns;
        out = a.out;
        days = a.days;
        if (!out) {
                fprintf(stderr, "Error: --out DIR is required\n\n");
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
        struct config_args a = { .r = { .name = "pilotfish-sidecar-injector", .service = "pilotfish-webhook",
                                        .ns = "istio-system", .timeout_s = 10 } };
        struct registration r;
        struct strbuf out = STRBUF_NULL;
        const char *ca_path;
        char *ca, why[128];
        size_t ca_len;
        int n = flags_parse_main(&config_table, &a, argc, argv, &a.help, config_usage);

        if (n != 0)
                return n < 0 ? 1 : 0;
        r = a.r;
        ca_path = a.ca_path;
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
