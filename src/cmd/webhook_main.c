/*
 * pilotfish-webhook: the admission webhook's own binary, so that only it links OpenSSL.
 * `pilotfish webhook ARGS` executes it as `pilotfish-webhook webhook ARGS`, `pilotfish certs
 * ARGS` as `pilotfish-webhook certs ARGS`; run directly, it takes the same arguments, with or
 * without the leading "webhook".
 */
#include <string.h>

#include "cmd/certs.h"
#include "cmd/webhook.h"

int main(int argc, char **argv)
{
        if (argc > 1 && strcmp(argv[1], "certs") == 0)
                return certs_main(argc - 1, argv + 1);
        if (argc > 1 && strcmp(argv[1], "webhook") == 0) {
                argc--;
                argv++;
        }
        if (argc > 1 && strcmp(argv[1], "config") == 0)
                return webhook_config_main(argc - 1, argv + 1);
        return webhook_main(argc, argv);
}
