/*
 * `pilotfish webhook --tls-cert FILE --tls-key FILE [--config FILE] [--port 15017]`: the
 * admission webhook that injects every pod the API server sends it. See docs/cli/webhook.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/webhook.h"
#include "common/log.h"
#include "inject/settings.h"
#include "webhook/server.h"

extern char **environ;

static void usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish webhook --tls-cert FILE --tls-key FILE [--config FILE] [--port 15017]\n"
                   "                         [--max-connections N] [--read-timeout S] [--idle-timeout S]\n"
                   "                         [--shutdown-grace S] [--answer-cache N] [--log-level L]\n\n"
                   "Serves the mutating admission webhook over HTTPS: POST /inject, GET /healthz, /readyz, /metrics.\n\n"
                   "  --tls-cert FILE          certificate chain (PEM); reloaded when it changes on disk\n"
                   "  --tls-key FILE           its private key (PEM)\n"
                   "  --config FILE            the injector configuration (see docs/cli/inject.md)\n"
                   "  --port N                 default 15017\n"
                   "  --max-connections N      default 1024; beyond, new connections are closed\n"
                   "  --read-timeout S         one request's head and body, default 10\n"
                   "  --idle-timeout S         between keep-alive requests, default 90\n"
                   "  --shutdown-grace S       SIGTERM: how long requests in flight may take, default 10\n"
                   "  --answer-cache N         answers kept for requests that differ only in uid (a burst of\n"
                   "                           one template's pods), default 256, 0: off\n"
                   "  --log-level L            debug, info, warn, error (default info)\n"
                   "  -h, --help               this text\n\n"
                   "pilotfish webhook config --ca-bundle FILE [--service NAME] [--namespace NS] [--name NAME]\n"
                   "                         [--timeout S]\n"
                   "  prints the MutatingWebhookConfiguration that registers the webhook, with FILE as its CA bundle\n");
}

static int number(const char *flag, const char *v, unsigned long min, unsigned long max, unsigned *ret)
{
        char *end;
        unsigned long n = strtoul(v, &end, 10);

        if (!*v || *v == '-' || *end || n < min || n > max) {
                fprintf(stderr, "Error: %s: '%s' is not a number in %lu..%lu\n", flag, v, min, max);
                return -1;
        }
        *ret = (unsigned)n;
        return 0;
}

int webhook_main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "tls-cert", required_argument, NULL, 'c' },
                { "tls-key", required_argument, NULL, 'k' },
                { "config", required_argument, NULL, 'C' },
                { "port", required_argument, NULL, 'p' },
                { "max-connections", required_argument, NULL, 'm' },
                { "read-timeout", required_argument, NULL, 'r' },
                { "idle-timeout", required_argument, NULL, 'i' },
                { "shutdown-grace", required_argument, NULL, 'g' },
                { "answer-cache", required_argument, NULL, 'a' },
                { "log-level", required_argument, NULL, 'l' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct webhook_settings s = { .port = 15017, .max_connections = 1024, .read_timeout_s = 10,
                                      .idle_timeout_s = 90, .shutdown_grace_s = 10, .answer_cache = 256 };
        const char *config = NULL, *level = "info";
        struct inject_config c;
        char err[1024], spec[64];
        enum log_level lvl;
        int opt, rc;

        opterr = 0;
        optind = 1;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                int r = 0;
                switch (opt) {
                case 'c': s.tls_cert = optarg; break;
                case 'k': s.tls_key = optarg; break;
                case 'C': config = optarg; break;
                case 'p': r = number("--port", optarg, 1, 65535, &s.port); break;
                case 'm': r = number("--max-connections", optarg, 1, 1u << 20, &s.max_connections); break;
                case 'r': r = number("--read-timeout", optarg, 1, 3600, &s.read_timeout_s); break;
                case 'i': r = number("--idle-timeout", optarg, 1, 86400, &s.idle_timeout_s); break;
                case 'g': r = number("--shutdown-grace", optarg, 1, 3600, &s.shutdown_grace_s); break;
                case 'a': r = number("--answer-cache", optarg, 0, 4096, &s.answer_cache); break;
                case 'l': level = optarg; break;
                case 'h': usage(stdout); return 0;
                default:
                        fprintf(stderr, "Error: unknown or incomplete option %s\n\n", argv[optind - 1]);
                        usage(stderr);
                        return 1;
                }
                if (r < 0)
                        return 1;
        }
        if (optind < argc) {
                fprintf(stderr, "Error: unexpected argument %s\n", argv[optind]);
                return 1;
        }
        if (!s.tls_cert || !s.tls_key) {
                fprintf(stderr, "Error: --tls-cert and --tls-key are required (the API server only calls webhooks over HTTPS)\n");
                return 1;
        }
        snprintf(spec, sizeof(spec), "default:%s", level);
        if (log_parse_output_level(spec, &lvl) < 0) {
                fprintf(stderr, "Error: --log-level: '%s' (want debug, info, warn, error)\n", level);
                return 1;
        }
        log_set_level(lvl);
        inject_config_init(&c);
        if (inject_config_env(&c, environ, err, sizeof(err)) < 0 ||
            (config && inject_config_load(&c, config, err, sizeof(err)) < 0)) {
                fprintf(stderr, "Error: %s\n", err);
                inject_config_deinit(&c);
                return 1;
        }
        rc = webhook_serve(&s, &c);
        inject_config_deinit(&c);
        return rc;
}
