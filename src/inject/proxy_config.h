/*
 * The pod's proxy.istio.io/config annotation: Istio's ProxyConfig overrides, YAML or JSON.
 * pilotfish reads the fields that change what it injects (holdApplicationUntilProxyStarts,
 * interceptionMode, proxyMetadata) and checks the types of the common others, so that a typo'd
 * value fails the injection with the annotation named instead of being ignored. Fields it does
 * not know pass: ProxyConfig has many, most of them Envoy's.
 */
#pragma once

#include <stdbool.h>

#include "common/strv.h"

struct strbuf;

struct proxy_config {
        bool hold;                      /* holdApplicationUntilProxyStarts */
        char *interception_mode;        /* NULL: not set */
        struct strv metadata;           /* proxyMetadata, "NAME=VALUE" in the annotation's order */
};

/* Parses text (NULL: nothing set). Returns 0, or -EINVAL with one message appended to err. */
int proxy_config_parse(const char *text, struct proxy_config *ret, struct strbuf *err);
void proxy_config_free(struct proxy_config *pc);
