/*
 * `pilotfish proxy [sidecar] [flags]`: settings, log level, then the proxy's run loop.
 */
#include <stdio.h>

#include "cmd/proxy.h"
#include "common/log.h"
#include "proxy/run.h"
#include "proxy/settings.h"

extern char **environ;

int proxy_main(int argc, char **argv)
{
        struct proxy_settings s;
        char err[2048] = "", spec[64];
        enum log_level lvl;
        int r;

        r = proxy_settings_parse(&s, argc, argv, environ, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "Error: %s\n\n", err);
                proxy_settings_usage(stderr);
                return 1;
        }
        if (r > 0) {
                proxy_settings_usage(stdout);
                return 0;
        }
        snprintf(spec, sizeof(spec), "default:%s", s.log_level);
        if (log_parse_output_level(spec, &lvl) < 0) {
                fprintf(stderr, "Error: invalid log level \"%s\" (want debug, info, warn, error)\n", s.log_level);
                return 1;
        }
        log_set_level(lvl);
        return proxy_run(&s, environ);
}
