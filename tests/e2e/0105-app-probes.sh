#!/usr/bin/env bash
#
# 0105-app-probes: kubelet's probes of an injected pod work end to end (docs/cli/inject.md
# "Application probes", docs/cli/proxy.md "Application probes"). A pod manifest with HTTP and
# TCP probes goes through `pilotfish inject`; the proxy then runs with the environment the
# injector gave it (ISTIO_KUBE_APP_PROBERS) in a pod with the capture rules, and each rewritten
# probe is requested the way kubelet would, from outside the pod, on the status port.
#
#   pod a  198.18.0.1 ("the node": curl as kubelet)  ---- veth ----  pod b 198.18.0.2
#                                                                    capture rules, proxy,
#                                                                    nginx on 198.18.0.2:80
#                                                                    (/healthz exists), nothing on
#                                                                    81, port 9 dropped in INPUT
# The test proves:
#   - the injector rewrote every HTTP and TCP probe to 15020 /app-health/<container>/<kind>, and
#     its ISTIO_KUBE_APP_PROBERS holds the originals with the named port resolved;
#   - through the proxy: an HTTP probe on a path nginx serves answers 200, one on a missing path
#     answers nginx's 404, a TCP probe to nginx answers 200, a TCP probe to a closed port 500,
#     and an HTTP probe to a port that drops packets 500 after its 1 s timeout;
#   - the HTTP probe reached nginx from 127.0.0.6 with the probe's path: the proxy connects to
#     the pod's address from the inbound passthrough source, which the capture rules let
#     through (from any other source, a connection of the proxy's UID to the pod's own address
#     is sent to 15006, and a TCP probe to a closed port would seem to succeed there);
#   - an unknown probe path answers 404, and the proxy exits 0 on SIGTERM.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl nginx jq fy-tool
pf_backend
B=$PF_PODB

pods_new 4
apply_rules "pod b" b "$PF_BACKEND" "${PF_CAPTURE[@]}" || bail "capture rules in pod b"
must in_ns b "iptables-$PF_BACKEND" -A INPUT -p tcp --dport 9 -j DROP
nginx_start b app "$B:80" || bail "nginx did not start"
echo ok >"$E2E_TMP/app/www/healthz"

cat >"$E2E_TMP/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop}
spec:
  containers:
  - name: web
    image: example/web
    ports: [{name: http, containerPort: 80}]
    readinessProbe: {httpGet: {path: /healthz, port: http}}
    livenessProbe: {tcpSocket: {port: 80}}
    startupProbe: {httpGet: {path: /missing, port: 80}}
  - name: other
    image: example/other
    readinessProbe: {tcpSocket: {port: 81}}
    livenessProbe: {httpGet: {path: /, port: 9}, timeoutSeconds: 1}
EOF
"$PILOTFISH" inject -f "$E2E_TMP/pod.yaml" >"$E2E_TMP/injected.yaml" 2>"$E2E_TMP/inject.err" ||
        bail "pilotfish inject failed: $(cat "$E2E_TMP/inject.err")"
fy-tool --dump --mode json "$E2E_TMP/injected.yaml" | jq -s '.[0]' >"$E2E_TMP/injected.json"
probers=$(jq -r '[.spec.initContainers[], .spec.containers[] | select(.name == "istio-proxy")][0].env[]
        | select(.name == "ISTIO_KUBE_APP_PROBERS") | .value' "$E2E_TMP/injected.json")
probes=$(jq -r '.spec.containers[] | .name as $c | (.readinessProbe, .livenessProbe, .startupProbe)
        | select(. != null) | "\($c) \(.httpGet.port) \(.httpGet.path)"' "$E2E_TMP/injected.json")
assert_eq "the injector pointed all five probes at 15020 /app-health/<container>/<kind>" "$probes" \
"web 15020 /app-health/web/readyz
web 15020 /app-health/web/livez
web 15020 /app-health/web/startupz
other 15020 /app-health/other/readyz
other 15020 /app-health/other/livez"
assert_eq "ISTIO_KUBE_APP_PROBERS holds the originals, the named port resolved to 80" \
        "$(jq -c -S . <<<"$probers")" \
        '{"/app-health/other/livez":{"httpGet":{"path":"/","port":9},"timeoutSeconds":1},"/app-health/other/readyz":{"tcpSocket":{"port":81}},"/app-health/web/livez":{"tcpSocket":{"port":80}},"/app-health/web/readyz":{"httpGet":{"path":"/healthz","port":80}},"/app-health/web/startupz":{"httpGet":{"path":"/missing","port":80}}}'

proxy_start b proxy --env "ISTIO_KUBE_APP_PROBERS=$probers" --env "INSTANCE_IP=$B" -- sidecar --workers 1 ||
        bail "the proxy did not start"
PID=$PF_PID

# kubelet PATH: the HTTP status kubelet would see for GET http://B:15020PATH, from pod a.
kubelet() { http_code a "http://$B:15020$1"; }
assert_eq "web readyz (HTTP /healthz, served by nginx): 200" "$(kubelet /app-health/web/readyz)" 200
assert_eq "web livez (TCP to nginx's port 80): 200" "$(kubelet /app-health/web/livez)" 200
assert_eq "web startupz (HTTP /missing): nginx's 404 is passed on" "$(kubelet /app-health/web/startupz)" 404
assert_eq "other readyz (TCP to port 81, nothing there): 500, not the inbound listener's accept" \
        "$(kubelet /app-health/other/readyz)" 500
start=$(date +%s%N)
code=$(kubelet /app-health/other/livez)
ms=$((($(date +%s%N) - start) / 1000000))
if [ "$code" = 500 ] && [ "$ms" -ge 900 ]; then
        ok "other livez (HTTP to a port that drops packets): 500 after its 1 s timeout ($ms ms)"
else
        not_ok "other livez (HTTP to a port that drops packets): 500 after its 1 s timeout"
        diag "status $code after $ms ms"
fi
assert_eq "an unknown probe path answers 404" "$(kubelet /app-health/nope/readyz)" 404
line=$(grep -E "^127\.0\.0\.6 GET /healthz 200 " "$E2E_TMP/app/access.log" | head -1)
if [ -n "$line" ]; then
        ok "nginx saw the readiness probe: GET /healthz from 127.0.0.6, straight from the proxy"
else
        not_ok "nginx saw the readiness probe: GET /healthz from 127.0.0.6, straight from the proxy"
        diag_file "$E2E_TMP/app/access.log" access.log
fi
proxy_stop "$PID" proxy "the proxy exits 0 on SIGTERM (no sanitizer report)"
