/*
 * IP addresses and prefixes as Istio's flags take them. Parsing follows Go's
 * netip.ParsePrefix, which is what istio-iptables uses: a prefix length is required, host bits
 * are kept as written, IPv4 rejects leading zeros, and IPv6 text is printed canonicalised
 * (lower case, longest zero run compressed), so the rule text matches Istio's byte for byte.
 */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>

struct cidr {
        int family;             /* AF_INET or AF_INET6 */
        union {
                struct in_addr v4;
                struct in6_addr v6;
        } addr;
        unsigned prefix_len;
};

/* Parses "ADDR/LEN". Returns 0, or -EINVAL (no "/", bad address, bad length). */
int cidr_parse(const char *s, struct cidr *ret);
/* Parses a bare address, no prefix length (resolv.conf). Returns 0 or -EINVAL. */
int ip_parse(const char *s, struct cidr *ret);
/* Canonical text "ADDR/LEN" into buf (at least 64 bytes). */
void cidr_format(const struct cidr *c, char *buf, size_t len);
/* Canonical text of the address alone. */
void ip_format(const struct cidr *c, char *buf, size_t len);
/*
 * The spelling iptables itself prints (glibc inet_ntop: "::0.1.0.2" for an address whose
 * first 96 bits are zero), for comparing with iptables-save output.
 */
void cidr_format_iptables(const struct cidr *c, char *buf, size_t len);
void ip_format_iptables(const struct cidr *c, char *buf, size_t len);
/* True when the address is a loopback address (127.0.0.0/8 or ::1). */
bool cidr_is_loopback(const struct cidr *c);
