/*
 * `pilotfish webhook --tls-cert FILE --tls-key FILE [--config FILE] [--port 15017]`: the
 * admission webhook that injects every pod the API server sends it. See docs/cli/webhook.md.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/webhook.h"
#include "common/flags.h"
#include "common/log.h"
#include "inject/settings.h"
#include "webhook/server.h"

extern char **environ;

struct webhook_args {
        struct webhook_settings s;
        const char *config, *level;
        bool help;
};

#define O(f) offsetof(struct webhook_args, f)
static const struct flags_opt opts[] = {
        { .name = "tls-cert", .metavar = "FILE", .offset = O(s.tls_cert),
          .help = "certificate chain (PEM); reloaded when it changes on disk" },
        { .name = "tls-key", .metavar = "FILE", .offset = O(s.tls_key), .help = "its private key (PEM)" },
        { .name = "config", .metavar = "FILE", .offset = O(config),
          .help = "the injector configuration (see docs/cli/inject.md)" },
        { .name = "port", .metavar = "N", .def = "15017", .set = flags_set_uint, .offset = O(s.port), .min = 1,
          .max = 65535, .help = "the HTTPS port" },
        { .name = "max-connections", .metavar = "N", .def = "1024", .set = flags_set_uint,
          .offset = O(s.max_connections), .min = 1, .max = 1u << 20,
          .help = "beyond, new connections are closed" },
        { .name = "read-timeout", .metavar = "S", .def = "10", .set = flags_set_uint, .offset = O(s.read_timeout_s),
          .min = 1, .max = 3600, .help = "one request's head and body, in seconds" },
        { .name = "idle-timeout", .metavar = "S", .def = "90", .set = flags_set_uint, .offset = O(s.idle_timeout_s),
          .min = 1, .max = 86400, .help = "between keep-alive requests, in seconds" },
        { .name = "shutdown-grace", .metavar = "S", .def = "10", .set = flags_set_uint,
          .offset = O(s.shutdown_grace_s), .min = 1, .max = 3600,
          .help = "SIGTERM: how long requests in flight may take, in seconds" },
        { .name = "answer-cache", .metavar = "N", .def = "256", .set = flags_set_uint, .offset = O(s.answer_cache),
          .min = 0, .max = 4096,
          .help = "answers kept for requests that differ only in uid (a burst of one template's pods); 0: off" },
        { .name = "log-level", .metavar = "L", .def = "info", .offset = O(level), .help = "debug, info, warn, error" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "this text" },
};
#undef O
static const struct flags_table table = FLAGS_TABLE(opts, 0, NULL);

static void usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish webhook --tls-cert FILE --tls-key FILE [flags]\n\n"
                   "Serves the mutating admission webhook over HTTPS: POST /inject, GET /healthz, /readyz, /metrics.\n\n");
        flags_usage(&table, f);
        fprintf(f, "\npilotfish webhook config --ca-bundle FILE [--service NAME] [--namespace NS] [--name NAME]\n"
                   "                         [--timeout S]\n"
                   "  prints the MutatingWebhookConfiguration that registers the webhook, with FILE as its CA bundle\n");
}

int webhook_main(int argc, char **argv)
{
        struct webhook_args a = {
                .s = { .port = 15017, .max_connections = 1024, .read_timeout_s = 10, .idle_timeout_s = 90,
                       .shutdown_grace_s = 10, .answer_cache = 256 },
                .level = "info",
        };
        struct webhook_settings s;
        const char *config, *level;
        struct inject_config c;
        char err[1024], spec[64];
        enum log_level lvl;
        int rc = flags_parse_main(&table, &a, argc, argv, &a.help, usage);

        if (rc != 0)
                return rc < 0 ? 1 : 0;
        s = a.s;
        config = a.config;
        level = a.level;
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
