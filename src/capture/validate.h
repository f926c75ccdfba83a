/*
 * --run-validation: proves that redirection works in this namespace, as Istio's init container
 * does when a CNI plugin applied the rules (SEMANTICS.md section 13). Listeners on the
 * outbound and inbound capture ports of 127.0.0.1; a client connects to 127.0.0.6 on the probe
 * port until a listener accepts it and SO_ORIGINAL_DST names the probe port, or the timeout.
 */
#pragma once

#include <stddef.h>

struct capture_settings;

/* Returns 0 with a one-line summary in msg, or -ETIMEDOUT / another negative errno with why. */
int validate_run(const struct capture_settings *s, char *msg, size_t msglen);
