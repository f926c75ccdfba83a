#!/usr/bin/env bash
# Issue 10: deploy/webhook.yaml's Deployment runs under `podman kube play` from the image
# deploy/Dockerfile builds, with the Secret (made by `pilotfish certs`) and the ConfigMap it
# mounts: /readyz answers over HTTPS, verified with the CA bundle `pilotfish webhook config`
# puts in the registration, and a real AdmissionReview posted to /inject is answered with a
# JSON Patch that adds the sidecar. What podman cannot run (the ServiceAccount, Service,
# PodDisruptionBudget and the webhook registration) is checked by tests/lint/check-deploy.sh.
E2E_NAME=0301-podman-webhook
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
rt_init
for t in fy-tool jq base64 openssl; do
        command -v $t >/dev/null || skip_all "$t not found"
done
rt_build_image
tmp=$E2E_TMP
net=pf-rt-$$
ip=198.18.23.10
rt_network "$net" 198.18.23.0/24
host=pilotfish-webhook.istio-system.svc

must "$PILOTFISH" certs --service pilotfish-webhook --namespace istio-system --out "$tmp/certs"
# The CA the API server would use: the one in the registration pilotfish prints.
"$PILOTFISH" webhook config --ca-bundle "$tmp/certs/ca.crt" >"$tmp/registration.yaml" || bail "webhook config failed"
fy-tool --mode json --dump "$tmp/registration.yaml" | jq -r '.webhooks[0].clientConfig.caBundle' |
        base64 -d >"$tmp/ca-from-registration.pem"
check "the registration's CA bundle is a certificate" openssl x509 -noout -in "$tmp/ca-from-registration.pem"

# The Secret kubectl would make, as podman 4.3 takes it: a secret volume names a podman secret
# whose content is a Kubernetes Secret (a Secret document in the played file is ignored), and
# podman writes each data value into the volume as it stands, without base64-decoding it, so
# the values here are the PEM text itself.
indent() { sed 's/^/    /' "$1"; }
{
        printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: pilotfish-webhook-certs, namespace: istio-system}\n'
        printf 'type: kubernetes.io/tls\ndata:\n  tls.crt: |\n'
        indent "$tmp/certs/tls.crt"
        printf '  tls.key: |\n'
        indent "$tmp/certs/tls.key"
} >"$tmp/secret.yaml"
podman secret rm pilotfish-webhook-certs >/dev/null 2>&1
must podman secret create pilotfish-webhook-certs "$tmp/secret.yaml"
RT_SECRETS+=(pilotfish-webhook-certs)
# The manifest's own ConfigMap and Deployment, as written, but for one replica: podman 4.3
# publishes every containerPort on the host (lib.sh), so a second replica cannot bind 15017.
fy-tool --mode json --dump "$RT_ROOT/deploy/webhook.yaml" |
        jq -c 'select(.kind == "ConfigMap" or .kind == "Deployment") | if .kind == "Deployment" then .spec.replicas = 1 else . end' |
        while read -r doc; do
                printf -- '---\n%s\n' "$doc"
        done >"$tmp/play.yaml"
dep=$(fy-tool --mode json --dump "$RT_ROOT/deploy/webhook.yaml" | jq -r 'select(.kind == "Deployment") | .metadata.name')
img=$(fy-tool --mode json --dump "$RT_ROOT/deploy/webhook.yaml" | jq -r 'select(.kind == "Deployment") | .spec.template.spec.containers[0].image')
assert_eq "the Deployment runs the image make image builds" "$img" "$RT_IMAGE"

RT_PODS+=("$dep-pod-0")
# kube play makes named volumes of the ConfigMap and the secret.
RT_VOLUMES+=(pilotfish-injector pilotfish-webhook-certs)
out=$(timeout 120 podman kube play --build=false --network "$net" --ip "$ip" "$tmp/play.yaml" 2>&1) || {
        diag "$out"
        bail "podman kube play of deploy/webhook.yaml failed"
}
diag "$out"
pod=$(podman pod ps --format '{{.Name}}' --filter "label=app=$dep" | head -1)
[ -n "$pod" ] || pod=$(podman pod ps --format '{{.Name}}' | grep "^$dep" | head -1)
[ -n "$pod" ] || bail "no pod for Deployment $dep"
RT_PODS+=("$pod")
pid=$(rt_infra_pid "$pod")
ctr=$(podman ps --format '{{.Names}}' --filter "pod=$pod" | grep -v infra | head -1)
cpid=$(podman inspect --format '{{.State.Pid}}' "$ctr")
status=$(grep -E '^(Uid|CapEff):' "/proc/$cpid/status" | tr -s '\t ' ' ')
assert_contains "the webhook runs as 1337" "$status" "Uid: 1337 1337 1337 1337"
assert_contains "the webhook has no capabilities" "$status" "CapEff: 0000000000000000"
assert_eq "the webhook's root filesystem is read-only" "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" true

https() { # PATH [CURL ARGS...]: to the webhook by its Service name, verified with the registration's CA
        local path=$1
        shift
        nsenter -t "$pid" -n curl -s --max-time 10 --cacert "$tmp/ca-from-registration.pem" \
                --resolve "$host:15017:$ip" "https://$host:15017$path" "$@"
}
for i in $(seq 100); do
        [ "$(https /readyz -o /dev/null -w '%{http_code}')" = 200 ] && break
        sleep 0.2
done
assert_eq "/readyz answers 200 over HTTPS, verified with the registration's CA" \
        "$(https /readyz -o /dev/null -w '%{http_code}')" 200

cat >"$tmp/review.json" <<'EOF'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"6f1e5a52-4d0e-4c1a-9c55-2b1b7c1d0e01",
 "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "namespace":"shop","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller"},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":"shop","labels":{"app":"web"}},
   "spec":{"containers":[{"name":"web","image":"nginx","ports":[{"containerPort":80}]}]}},
 "dryRun":false}}
EOF
answer=$(https /inject -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/review.json")
assert_eq "the AdmissionReview is answered for its uid and allowed" \
        "$(jq -r '.response.uid + " " + (.response.allowed | tostring) + " " + .response.patchType' <<<"$answer")" \
        "6f1e5a52-4d0e-4c1a-9c55-2b1b7c1d0e01 true JSONPatch"
patch=$(jq -r '.response.patch' <<<"$answer" | base64 -d 2>/dev/null)
assert_contains "the patch adds istio-proxy with the image the ConfigMap names" \
        "$(jq -c '[.[] | select(.path | startswith("/spec/initContainers") or startswith("/spec/containers")) | .value] | tostring' <<<"$patch")" \
        "istio-proxy"
assert_contains "the patch's containers run $RT_IMAGE" "$patch" "\"$RT_IMAGE\""
metrics=$(https /metrics)
assert_match "the injection is counted on /metrics" "$metrics" 'sidecar_injection_success_total [1-9]'
