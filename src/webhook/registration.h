/*
 * The MutatingWebhookConfiguration that registers the webhook with the API server, printed by
 * `pilotfish webhook config`: CREATE of pods, in namespaces labelled istio-injection=enabled
 * except kube-system and the webhook's own (so the webhook can never block its own restart),
 * skipping pods labelled sidecar.istio.io/inject=false, failing closed, re-invoked if needed.
 */
#pragma once

#include <stddef.h>

struct strbuf;

struct registration {
        const char *name;               /* the configuration's name */
        const char *service, *ns;       /* the webhook's Service */
        unsigned timeout_s;             /* 1..30, the API server's bound */
        const char *ca_pem;             /* the CA bundle, PEM */
        size_t ca_len;
};

/* Appends the YAML document to out. */
void registration_yaml(const struct registration *r, struct strbuf *out);
