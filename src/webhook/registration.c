/*
 * The webhook registration; see registration.h. Written as text: it is a fixed document with
 * five values, and every value is quoted.
 */
#include <openssl/evp.h>
#include <stdlib.h>

#include "common/strbuf.h"
#include "inject/yaml.h"
#include "webhook/registration.h"

void registration_yaml(const struct registration *r, struct strbuf *out)
{
        unsigned char *b64 = malloc(4 * ((r->ca_len + 2) / 3) + 1);

        if (!b64) {
                out->error = -1;
                return;
        }
        EVP_EncodeBlock(b64, (const unsigned char *)r->ca_pem, (int)r->ca_len);
        strbuf_puts(out, "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: ");
        json_str(out, r->name);
        strbuf_puts(out, "\n  labels:\n    app.kubernetes.io/name: pilotfish-webhook\nwebhooks:\n"
                         "- name: sidecar-injector.pilotfish.io\n"
                         "  admissionReviewVersions: [v1, v1beta1]\n"
                         "  clientConfig:\n    service:\n      name: ");
        json_str(out, r->service);
        strbuf_puts(out, "\n      namespace: ");
        json_str(out, r->ns);
        strbuf_printf(out, "\n      path: /inject\n      port: 443\n    caBundle: %s\n", (const char *)b64);
        strbuf_puts(out, "  rules:\n"
                         "  - operations: [CREATE]\n"
                         "    apiGroups: [\"\"]\n"
                         "    apiVersions: [v1]\n"
                         "    resources: [pods]\n"
                         "  namespaceSelector:\n"
                         "    matchExpressions:\n"
                         "    - key: istio-injection\n"
                         "      operator: In\n"
                         "      values: [enabled]\n"
                         "    - key: kubernetes.io/metadata.name\n"
                         "      operator: NotIn\n"
                         "      values: [kube-system, ");
        json_str(out, r->ns);
        strbuf_printf(out, "]\n"
                           "  objectSelector:\n"
                           "    matchExpressions:\n"
                           "    - key: sidecar.istio.io/inject\n"
                           "      operator: NotIn\n"
                           "      values: [\"false\"]\n"
                           "  sideEffects: None\n"
                           "  failurePolicy: Fail\n"
                           "  matchPolicy: Equivalent\n"
                           "  reinvocationPolicy: IfNeeded\n"
                           "  timeoutSeconds: %u\n", r->timeout_s);
        free(b64);
}
