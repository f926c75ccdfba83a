#!/usr/bin/env bash
# deploy/ (issue 5): every manifest parses, and the properties deploy/README.md promises hold:
# the webhook's selectors and failure policy, the Service's port mapping onto the container's,
# the Deployment's replicas, anti-affinity, PodDisruptionBudget, probes, resources and security
# context, the webhook kept out of its own injection, the ConfigMap's injector configuration
# accepted by `pilotfish inject --config`, the cert-manager registration equal to what
# `pilotfish webhook config` prints (less the CA bundle), and the Dockerfile's entrypoint.
set -u
pilotfish=${PILOTFISH:?}
root=${SOURCE_ROOT:?}
d=$root/deploy
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
check() { # DESC JQ-EXPR FILE: the expression is true on the file's documents (an array)
        if [ "$(jq -c "$2" "$3" 2>&1)" = true ]; then ok "$1"; else not_ok "$1" "$(jq -c "$2" "$3" 2>&1 | head -c 300)"; fi
}
for t in fy-tool jq; do command -v $t >/dev/null || { echo "1..0 # SKIP $t not found"; exit 0; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$d"/*.yaml "$d"/cert-manager/*.yaml; do
        name=${f#"$d"/}
        if fy-tool --dump --mode json "$f" 2>"$tmp/err" | jq -s -c '[.[] | select(. != null)]' >"$tmp/${name//\//_}.json" &&
           [ "$(jq 'length' "$tmp/${name//\//_}.json")" -gt 0 ] && [ ! -s "$tmp/err" ]; then
                ok "deploy/$name parses ($(jq -r '[.[].kind] | join(", ")' "$tmp/${name//\//_}.json"))"
        else
                not_ok "deploy/$name parses" "$(cat "$tmp/err")"
        fi
done
W=$tmp/webhook.yaml.json
dep='(.[] | select(.kind == "Deployment"))'
check "Deployment: 2 replicas, spread over nodes (pod anti-affinity on kubernetes.io/hostname)" \
        "$dep | .spec.replicas == 2 and (.spec.template.spec.affinity.podAntiAffinity | tostring | test(\"kubernetes.io/hostname\"))" "$W"
check "PodDisruptionBudget keeps 1 of the Deployment's pods (same selector)" \
        "([.[] | select(.kind == \"PodDisruptionBudget\")][0].spec) as \$p | $dep | \$p.minAvailable == 1 and \$p.selector.matchLabels == .spec.selector.matchLabels" "$W"
check "the webhook's pods are labelled sidecar.istio.io/inject=false (never sent to themselves)" \
        "$dep | .spec.template.metadata.labels[\"sidecar.istio.io/inject\"] == \"false\"" "$W"
check "non-root 1337, seccomp RuntimeDefault, read-only root filesystem, no privilege escalation, ALL capabilities dropped" \
        "$dep | .spec.template.spec as \$s | \$s.securityContext.runAsNonRoot == true and \$s.securityContext.runAsUser == 1337 and \$s.securityContext.seccompProfile.type == \"RuntimeDefault\" and (\$s.containers[0].securityContext | .readOnlyRootFilesystem == true and .allowPrivilegeEscalation == false and .capabilities.drop == [\"ALL\"])" "$W"
check "probes: /readyz and /healthz over HTTPS on 15017; requests and limits set" \
        "$dep | .spec.template.spec.containers[0] | .readinessProbe.httpGet == {path: \"/readyz\", port: 15017, scheme: \"HTTPS\"} and .livenessProbe.httpGet == {path: \"/healthz\", port: 15017, scheme: \"HTTPS\"} and (.resources.requests | has(\"cpu\") and has(\"memory\")) and (.resources.limits | has(\"memory\"))" "$W"
check "the certificate Secret and the injector ConfigMap are mounted where the args point" \
        "$dep | .spec.template.spec as \$s | (\$s.volumes | map({(.name): (.secret.secretName // .configMap.name)}) | add) == {certs: \"pilotfish-webhook-certs\", config: \"pilotfish-injector\"} and (\$s.containers[0].args | index(\"--tls-cert=/etc/pilotfish/certs/tls.crt\") != null and index(\"--config=/etc/pilotfish/config/injector.yaml\") != null) and ([\$s.containers[0].volumeMounts[].mountPath] == [\"/etc/pilotfish/certs\", \"/etc/pilotfish/config\"])" "$W"
check "Service: port 443 to the container's 15017, selecting the Deployment's pods" \
        "([.[] | select(.kind == \"Service\")][0]) as \$svc | $dep | \$svc.spec.ports[0].port == 443 and \$svc.spec.ports[0].targetPort == .spec.template.spec.containers[0].ports[0].containerPort and \$svc.spec.selector == .spec.selector.matchLabels and (.spec.template.metadata.labels | contains(\$svc.spec.selector))" "$W"

# The ConfigMap's injector configuration is one pilotfish accepts.
jq -r '.[] | select(.kind == "ConfigMap") | .data["injector.yaml"]' "$W" >"$tmp/injector.yaml"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n' >"$tmp/pod.yaml"
if out=$("$pilotfish" inject -f "$tmp/pod.yaml" --config "$tmp/injector.yaml" 2>&1) && grep -q "istio-proxy" <<<"$out"; then
        ok "the ConfigMap's injector.yaml is accepted by pilotfish inject --config"
else
        not_ok "the ConfigMap's injector.yaml is accepted by pilotfish inject --config" "$out"
fi
check "the Deployment runs the image the injector puts in pods" \
        "([.[] | select(.kind == \"ConfigMap\")][0].data[\"injector.yaml\"] | capture(\"image: (?<i>[^\\\\n]+)\").i) as \$i | $dep | .spec.template.spec.containers[0].image == \$i" "$W"

# The cert-manager registration is what `pilotfish webhook config` prints, less the CA bundle,
# and it points at the Service and excludes the Deployment's namespace.
"$pilotfish" certs --out "$tmp/certs" >/dev/null 2>&1
"$pilotfish" webhook config --ca-bundle "$tmp/certs/ca.crt" | fy-tool --dump --mode json - | jq -c 'select(. != null)' >"$tmp/printed.json"
C=$tmp/cert-manager_webhook-configuration.yaml.json
if [ "$(jq -S -c '.[0].webhooks | map(del(.clientConfig.caBundle))' "$C")" = "$(jq -S -c '.webhooks | map(del(.clientConfig.caBundle))' "$tmp/printed.json")" ]; then
        ok "cert-manager/webhook-configuration.yaml registers exactly what pilotfish webhook config prints (less the caBundle)"
else
        not_ok "cert-manager/webhook-configuration.yaml registers what pilotfish webhook config prints" \
                "$(diff <(jq -S '.[0].webhooks' "$C") <(jq -S '.webhooks | map(del(.clientConfig.caBundle))' "$tmp/printed.json") | head -20)"
fi
check "registration: Fail, CREATE pods, istio-injection=enabled, its own namespace and kube-system excluded, inject=false skipped, the Service on 443 /inject" \
        ".[0] | .metadata.annotations[\"cert-manager.io/inject-ca-from\"] == \"istio-system/pilotfish-webhook\" and (.webhooks[0] | .failurePolicy == \"Fail\" and .rules[0].operations == [\"CREATE\"] and .rules[0].resources == [\"pods\"] and .namespaceSelector.matchExpressions[0] == {key: \"istio-injection\", operator: \"In\", values: [\"enabled\"]} and (.namespaceSelector.matchExpressions[1].values | index(\"istio-system\") != null and index(\"kube-system\") != null) and .objectSelector.matchExpressions[0] == {key: \"sidecar.istio.io/inject\", operator: \"NotIn\", values: [\"false\"]} and .clientConfig.service == {name: \"pilotfish-webhook\", namespace: \"istio-system\", path: \"/inject\", port: 443})" "$C"
check "the cert-manager Certificate covers the Service's names and fills the Secret the Deployment mounts" \
        "[.[] | select(.kind == \"Certificate\" and .spec.isCA != true)][0].spec | .secretName == \"pilotfish-webhook-certs\" and (.dnsNames | index(\"pilotfish-webhook.istio-system.svc\") != null)" \
        "$tmp/cert-manager_certificate.yaml.json"
# The image itself is built and run by the runtime suite (tests/runtime); here, what a reader
# of the Dockerfile relies on: the build stage installs only the build set, builds without the
# tests and assembles the runtime with deploy/rootfs.sh; the runtime stage is that tree alone,
# run as 1337:1337 with pilotfish as the entrypoint.
if grep -q 'install-deps.sh --build' "$d/Dockerfile" && grep -q -- '-Dtests=false' "$d/Dockerfile" &&
   grep -q 'deploy/rootfs.sh /rootfs' "$d/Dockerfile" && grep -q '^FROM scratch$' "$d/Dockerfile" &&
   grep -q '^COPY --from=build /rootfs /$' "$d/Dockerfile" && grep -q '^USER 1337:1337$' "$d/Dockerfile" &&
   grep -q '^ENTRYPOINT \["/usr/local/bin/pilotfish"\]' "$d/Dockerfile"; then
        ok "Dockerfile: build set only, no tests, runtime = deploy/rootfs.sh's tree, USER 1337:1337, entrypoint pilotfish"
else
        not_ok "Dockerfile: build set only, no tests, runtime = deploy/rootfs.sh's tree, USER 1337:1337, entrypoint pilotfish"
fi
echo "1..$n"
