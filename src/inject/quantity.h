/*
 * Kubernetes resource quantities ("100m", "128Mi", "1.5", "2e3"), as the injector needs them for
 * the sidecar.istio.io/proxy{CPU,Memory,CPULimit,MemoryLimit} annotations and the chart's
 * default resources. Istio checks each annotation with resource.ParseQuantity, pastes it into
 * the pod, and the pod goes back out through Quantity.String(): "1000m" comes out as "1",
 * "1024Mi" as "1Gi". This module accepts what ParseQuantity accepts and prints what String()
 * prints, byte for byte, so kube-inject output and webhook patches match Istio's.
 *
 * Kubernetes rounds every parsed value up (away from zero) to a multiple of 10^-9 and caps
 * binary-suffixed values at 2^63-1, so a value is held exactly as whole units plus
 * nanounits. Where Kubernetes goes beyond that range we refuse instead (see quantity_parse).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any text quantity_format() writes, and the longest input quantity_parse() takes, plus NUL. */
#define QUANTITY_TEXT_MAX 64

/* The suffix family of the input, which String() keeps. */
enum quantity_format {
        QUANTITY_DECIMAL_SI = 0,        /* n u m "" k M G T P E: 12M is 12 * 10^6 */
        QUANTITY_BINARY_SI,             /* Ki Mi Gi Ti Pi Ei: 12Mi is 12 * 2^20 */
        QUANTITY_DECIMAL_EXPONENT,      /* e or E and a signed integer: 12e6 */
};

struct quantity {
        uint64_t whole;                 /* |value| = whole + nano / 10^9; whole <= 2^63-1 */
        uint32_t nano;                  /* 0..999999999; 0 when whole == 2^63-1 */
        bool negative;                  /* never set for zero */
        enum quantity_format format;
        /*
         * The input itself when Kubernetes keeps it as the printed text: ParseQuantity caches
         * the string when its fast path sees it as already canonical, and String() then returns
         * that cache unchanged, quirks included ("+1Ki", "1.500k", "1e3"). "" otherwise.
         */
        char verbatim[QUANTITY_TEXT_MAX];
};

/*
 * Parses a Kubernetes quantity: [+-] digits [. digits] suffix, where the suffix is one of
 * n u m "" k M G T P E Ki Mi Gi Ti Pi Ei, or e/E and a signed integer. The oddities that
 * ParseQuantity accepts are accepted too ("1.", ".5", "+.m" is zero). No surrounding blanks.
 *
 * Refused beyond ParseQuantity: control characters (Istio refuses those before parsing),
 * input of QUANTITY_TEXT_MAX bytes or more, an exponent outside +-(2^31-1), and a decimal or
 * exponent-form value above 2^63-1 in magnitude, which apimachinery documents as its limit
 * but does not enforce for those formats. Binary-suffixed values above it are capped to
 * 2^63-1 as Kubernetes does.
 *
 * Returns 0 and fills *ret, or -EINVAL with *ret zeroed and *why (if why is not NULL) set to
 * a static reason: Kubernetes' own message for a malformed number or suffix, a short one of
 * ours otherwise. Nothing is allocated and s is not kept.
 */
int quantity_parse(const char *s, struct quantity *ret, const char **why);

/*
 * The text Quantity.String() prints for q into buf (at least QUANTITY_TEXT_MAX bytes; a
 * shorter buf gets a truncated, NUL-terminated text): the cached input if there is one, else
 * the canonical form in q's format. Canonical means no fraction and the largest suffix that
 * keeps the mantissa whole (decimal exponents in steps of 3); a binary value below 1024 in
 * magnitude or with a fraction is printed in decimal-SI form; zero is always "0".
 */
void quantity_format(const struct quantity *q, char *buf, size_t len);

/* Convenience: quantity_parse() then quantity_format(). Returns 0 or -EINVAL (buf untouched). */
int quantity_canonical(const char *s, char *buf, size_t len, const char **why);
