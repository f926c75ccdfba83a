/*
 * Go's value grammars, for the flags, environment variables and annotations that Istio reads
 * with Go's standard library: a duration as time.ParseDuration reads it and a boolean as
 * strconv.ParseBool does. One implementation for the whole tree, so that a value Istio takes is
 * taken everywhere and a value it refuses is refused everywhere; each caller adds its own rule
 * on top (a timeout refuses a negative value, a port list its own ranges) and words its own
 * message, naming the flag and echoing the value.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Parses s as Go's time.ParseDuration does (Go 1.21 and later): an optional sign, then one or
 * more decimal numbers, each with an optional fraction ("1.5", ".5", "1.") and a unit: ns, us,
 * µs (U+00B5), μs (U+03BC), ms, s, m, h. "0" alone (or "+0", "-0") needs no unit. No spaces,
 * exponents, hex or other units ("1d"). Fractions are converted as Go converts them (float64
 * per component, truncated to the nanosecond), so "1.0000000001s" is 1000000000 ns in both.
 * Returns 0 with *ret_ns set (INT64_MIN .. INT64_MAX nanoseconds), -EINVAL when s is not a
 * duration, -ERANGE when it does not fit; *ret_why (if not NULL) then says why in Go's words
 * ("missing unit", "unknown unit", "malformed" for Go's "invalid duration", "out of range"), a static string.
 */
int go_value_duration(const char *s, int64_t *ret_ns, const char **ret_why);

/*
 * Parses s as Go's strconv.ParseBool does: 1, t, T, TRUE, true, True are true; 0, f, F, FALSE,
 * false, False are false; anything else (" true", "yes", "on", "tRUE", "") is -EINVAL and
 * leaves *ret alone. Returns 0 or -EINVAL.
 */
int go_value_bool(const char *s, bool *ret);
