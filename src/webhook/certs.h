/*
 * A CA and a serving certificate for the webhook's Service, for clusters without
 * cert-manager: `pilotfish certs --service NAME --namespace NS --out DIR` writes DIR/ca.crt,
 * DIR/tls.crt and DIR/tls.key. ECDSA P-256 keys; the serving certificate names the Service in
 * every form the API server may use (NAME, NAME.NS, NAME.NS.svc, NAME.NS.svc.cluster.local)
 * and is for server authentication only.
 */
#pragma once

#include <stddef.h>

/* Returns 0, or -1 with what failed in err. Files are written whole (temporary + rename). */
int certs_make(const char *service, const char *ns, const char *dir, unsigned days, char *err, size_t errlen);
