/*
 * A stream of YAML or JSON documents in, the injected documents out: parse each document with
 * libfyaml, inject it, emit it as block YAML followed by "---", as istioctl kube-inject does.
 * Used by `pilotfish inject` and by the fuzz target, so both run the same path.
 */
#pragma once

#include <stddef.h>

struct inject_config;
struct strbuf;

/*
 * Injects every document of the input (name is used in messages). The result goes to out,
 * notes for skipped workloads to notes, errors to err. Returns 0, or -EINVAL when the input
 * does not parse or a workload failed: then out must not be written anywhere.
 */
int inject_stream(const struct inject_config *c, const char *name, const char *input, size_t len,
                  struct strbuf *out, struct strbuf *notes, struct strbuf *err);
