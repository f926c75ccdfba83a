/*
 * Listening TCP sockets for the proxy's capture and admin ports and the webhook: one helper so
 * that dual-stack, SO_REUSEPORT, IP_TRANSPARENT and the error text are decided in one place.
 * IPv6 dual-stack is used when the namespace has IPv6 and no IPv4 address was asked for,
 * because one socket then takes both families (IPv4 as mapped addresses).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Opens a non-blocking listening TCP socket on addr:port (addr NULL: every address). Returns
 * the fd, or a negative errno with what failed (socket, setsockopt, bind, listen) in err.
 */
int listen_tcp(const char *addr, unsigned port, bool reuseport, bool transparent, char *err, size_t errlen);
/*
 * Returns 0 when nothing listens on TCP port (every address), -EADDRINUSE with a message in
 * err when something does, whether or not it set SO_REUSEPORT.
 */
int port_check_unused(unsigned port, char *err, size_t errlen);
