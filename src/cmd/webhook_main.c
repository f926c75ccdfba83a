/*
 * pilotfish-webhook: the admission webhook's own binary, so that only it links OpenSSL.
 * `pilotfish webhook ARGS` executes it as `pilotfish-webhook webhook ARGS`; run directly, it
 * takes the same arguments with or without the leading "webhook".
 */
#include <string.h>

#include "cmd/webhook.h"

int main(int argc, char **argv)
{
        if (argc > 1 && strcmp(argv[1], "webhook") == 0)
                return webhook_main(argc - 1, argv + 1);
        return webhook_main(argc, argv);
}
