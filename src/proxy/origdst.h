/*
 * Where a captured connection was going. REDIRECT (nat) rewrites the destination, and
 * conntrack keeps the original: SO_ORIGINAL_DST for IPv4, IP6T_SO_ORIGINAL_DST for IPv6.
 * TPROXY keeps the destination, so it is the accepted socket's own local address.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Returns 0, or a negative errno (-ENOENT: no NAT entry, i.e. not a captured connection). */
int origdst_get(int fd, bool transparent, struct sockaddr_storage *ret);

/* "198.18.0.1:80" or "[2001:2::1]:80" into buf (at least 64 bytes). */
void sockaddr_format(const struct sockaddr_storage *sa, char *buf, size_t len);
unsigned sockaddr_port(const struct sockaddr_storage *sa);
bool sockaddr_is_loopback(const struct sockaddr_storage *sa);

/*
 * Binds fd (a TCP socket of family, not yet connected) to the inbound passthrough source,
 * 127.0.0.6 or ::6: the capture rules let the proxy's connections from there reach the pod's
 * own addresses instead of sending them back to 15006. Returns 0 or -errno.
 */
int passthrough_bind(int fd, int family);
