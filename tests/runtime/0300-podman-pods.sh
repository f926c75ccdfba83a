#!/usr/bin/env bash
# Issue 10: the pod spec `pilotfish inject` writes runs in a real container runtime with the
# image pilotfish ships. Two injected pods (classic layout, nativeSidecars false) on an internal
# podman network on 198.18.21.0/24, played by `podman kube play` from the image deploy/Dockerfile
# builds: istio-init programs the pod's packet filter and exits 0; istio-proxy runs as 1337
# with no capabilities, no new privileges and a read-only root filesystem; the client's requests
# reach the server through both sidecars and both sidecars count them; the rewritten
# application probe answers on 15020 as kubelet calls it; SIGTERM with a grace period drains
# the proxy and it exits 0; a Job pod whose application calls /quitquitquit finishes. The
# native-sidecar layout is shown to be refused by podman 4.3, so an upgrade that runs it shows.
E2E_NAME=0300-podman-pods
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
rt_init
rt_build_image
tmp=$E2E_TMP
net=pf-rt-$$
subnet=198.18.21.0/24
server_ip=198.18.21.10
client_ip=198.18.21.11
job_ip=198.18.21.12
rt_network "$net" "$subnet"

pod() { # NAME COMMAND-JSON [RESTART]: an application pod for pilotfish inject
        cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: default
  labels: {app: $1, version: v1}
spec:
  restartPolicy: ${3:-OnFailure}
  containers:
  - name: app
    image: localhost/pilotfish-testapp:1
    command: $2
EOF
        # Only the server declares its port and probe: podman 4.3 publishes every containerPort
        # on the host (lib.sh), so two pods cannot both declare 8080.
        [ "$1" = server ] && cat <<EOF
    ports:
    - {name: http, containerPort: 8080}
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
EOF
        return 0
}
pod server '[/bin/busybox, httpd, -f, -p, "8080", -h, /www]' >"$tmp/server.yaml"
pod client '[/bin/busybox, sleep, "3600"]' >"$tmp/client.yaml"
# The job calls pilot-agent's /quitquitquit, as Istio's documentation tells Jobs to.
# In the classic layout the application starts with its proxy, not after it (podman runs no
# postStart hook that would hold it), so its first connection may find 15001 not yet
# listening: it retries, for up to 10 s, as a Job without holdApplicationUntilProxyStarts must.
job_script="i=0; until wget -q -O /dev/null http://$server_ip:8080/index.html; do i=\$((i + 1)); [ \$i -ge 50 ] && exit 1; sleep 0.2; done; wget -q -O - --post-data= http://127.0.0.1:15020/quitquitquit"
pod job "[/bin/busybox, sh, -c, '$job_script']" Never >"$tmp/job.yaml"
# podman 4.3 restarts finished init containers under restartPolicy Always (lib.sh), and a
# Job's pod says Never or OnFailure anyway: the job pod keeps Never, the others OnFailure.
for p in server client job; do
        must env ENABLE_NATIVE_SIDECARS=false "$PILOTFISH" inject -f "$tmp/$p.yaml" -o "$tmp/$p-injected.yaml"
done
rt_podman_fix "$tmp/server-injected.yaml" "$tmp/server.json" default "$server_ip" 0
rt_podman_fix "$tmp/client-injected.yaml" "$tmp/client.json" default "$client_ip" 1
rt_podman_fix "$tmp/job-injected.yaml" "$tmp/job.json" default "$job_ip" 1
# Nothing else changed: the played pod is the injected one less what lib.sh lists.
for p in server client job; do
        check "$p: the played pod is pilotfish inject's, less podman 4.3's workarounds only" \
                rt_same_but_workarounds "$tmp/$p-injected.yaml" "$tmp/$p.json"
done

rt_play server "$tmp/server.json" "$net" "$server_ip"
rt_play client "$tmp/client.json" "$net" "$client_ip"
spid=$(rt_infra_pid server)
cpid=$(rt_infra_pid client)
[ -n "$spid" ] && [ -n "$cpid" ] || bail "no infra process for the pods"

for p in server client; do
        assert_eq "$p: istio-init ran pilotfish iptables and exited 0" "$(rt_exit_code "$p-istio-init")" 0
done
for p in "server:$spid" "client:$cpid"; do
        name=${p%%:*}
        pid=${p#*:}
        rules=$(nsenter -t "$pid" -n iptables-save -t nat 2>&1)
        assert_contains "$name: the ISTIO_* chains are in the pod's network namespace" "$rules" \
                "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"
        assert_contains "$name: outbound goes to 15001, the proxy's UID is exempt" "$rules" \
                "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
        assert_contains "$name: the proxy's ports are not captured" "$rules" \
                "-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN"
        ppid=$(podman inspect --format '{{.State.Pid}}' "$name-istio-proxy")
        status=$(grep -E '^(Uid|Gid|CapEff|CapPrm|CapBnd|NoNewPrivs):' "/proc/$ppid/status" | tr -s '\t ' ' ')
        assert_contains "$name: istio-proxy runs as UID 1337" "$status" "Uid: 1337 1337 1337 1337"
        assert_contains "$name: istio-proxy runs as GID 1337" "$status" "Gid: 1337 1337 1337 1337"
        assert_contains "$name: istio-proxy has no effective capabilities" "$status" "CapEff: 0000000000000000"
        assert_contains "$name: istio-proxy has no permitted capabilities" "$status" "CapPrm: 0000000000000000"
        assert_contains "$name: istio-proxy cannot gain privileges" "$status" "NoNewPrivs: 1"
        assert_eq "$name: istio-proxy's root filesystem is read-only" \
                "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name-istio-proxy")" true
        check "$name: /healthz/ready answers 200" rt_wait_ready "$pid"
done

# The requests: client app -> client sidecar (15001) -> server sidecar (15006) -> httpd.
ok_n=0
for i in 1 2 3 4 5; do
        out=$(podman exec client-app /bin/busybox wget -q -O - "http://$server_ip:8080/index.html" 2>&1) &&
                [ "$out" = "hello from the server pod" ] && ok_n=$((ok_n + 1))
done
assert_eq "5 requests from the client pod reach the server pod's application" "$ok_n" 5

metric() { # PID REPORTER: the proxy's istio_tcp_connections_opened_total for port 8080
        nsenter -t "$1" -n curl -s http://127.0.0.1:15090/stats/prometheus |
                awk -v r="reporter=\"$2\"" '/^istio_tcp_connections_opened_total\{/ && index($0, r) && /8080/ { s += $NF } END { print s + 0 }'
}
assert_eq "the client's sidecar counted them (reporter=\"source\")" "$(metric "$cpid" source)" 5
# The server's readiness probe may go through the inbound path too: count at least the 5.
got=$(metric "$spid" destination)
if [ "$got" -ge 5 ]; then ok "the server's sidecar counted them (reporter=\"destination\", $got)"
else not_ok "the server's sidecar counted them (reporter=\"destination\")"; diag "got $got"; fi
scrape=$(nsenter -t "$spid" -n curl -s http://127.0.0.1:15090/stats/prometheus)
assert_contains "the server's series carry the pod's workload" "$scrape" 'destination_workload="server"'

# kubelet's probe: the rewritten readinessProbe path on 15020, sent to the pod's address.
code=$(nsenter -t "$spid" -n curl -s -o /dev/null -w '%{http_code}' "http://$server_ip:15020/app-health/app/readyz")
assert_eq "the rewritten readiness probe answers 200 on 15020, as kubelet calls it" "$code" 200
podman stop -t 2 server-app >/dev/null 2>&1
code=$(nsenter -t "$spid" -n curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$server_ip:15020/app-health/app/readyz")
# pilot-agent answers 500 when the application cannot be reached.
assert_eq "with the application stopped, the probe fails (500, as pilot-agent)" "$code" 500
code=$(nsenter -t "$spid" -n curl -s -o /dev/null -w '%{http_code}' -X POST "http://$server_ip:15020/quitquitquit")
assert_eq "/quitquitquit on 15020 from outside the pod's loopback is refused (403)" "$code" 403
podman start server-app >/dev/null 2>&1

# Termination as kubelet does it: SIGTERM, then a grace period. podman 4.3's `kube down`
# removes the pod at once (seen: every container exits 137, SIGKILL), so the test stops the pod
# with `podman pod stop`, which sends SIGTERM with a grace period, and then plays `kube down`.
must timeout 60 podman pod stop -t 5 server
assert_eq "pod stop (SIGTERM): istio-proxy drained and exited 0" "$(rt_exit_code server-istio-proxy)" 0
must timeout 120 podman kube down "$tmp/server.json"

# A Job: the application finishes, calls /quitquitquit, and the whole pod finishes.
rt_play server "$tmp/server.json" "$net" "$server_ip"
spid=$(rt_infra_pid server)
rt_wait_ready "$spid" || bail "server pod not ready after replay"
# The application's own readiness, through the rewritten probe, before the job calls it.
rt_wait nsenter -t "$spid" -n curl -sf "http://$server_ip:15020/app-health/app/readyz" || bail "server app not ready"
rt_play job "$tmp/job.json" "$net" "$job_ip"
pod_exited() { [ "$(podman pod inspect --format '{{.State}}' job 2>/dev/null)" = Exited ]; }
rt_wait pod_exited
assert_eq "job: the application exited 0" "$(rt_exit_code job-app)" 0
assert_eq "job: /quitquitquit from the application stopped istio-proxy, exit 0" "$(rt_exit_code job-istio-proxy)" 0
assert_eq "job: the pod finished" "$(podman pod inspect --format '{{.State}}' job 2>/dev/null)" Exited

# The native-sidecar layout (Kubernetes 1.29+, pilotfish's default): istio-proxy is an init
# container with restartPolicy Always. podman 4.3 has no such thing (containers/podman#25157):
# it runs init containers to completion before the app, so the play waits on a proxy that never
# ends and gives up. This documents what it does; when podman learns native sidecars it fails.
must "$PILOTFISH" inject -f "$tmp/client.yaml" -o "$tmp/native-injected.yaml"
rt_podman_fix "$tmp/native-injected.yaml" "$tmp/native.json" default 198.18.21.13 1
sed -i 's/"name": "client"/"name": "native"/' "$tmp/native.json"
RT_PODS+=(native)
out=$(timeout 90 podman kube play --build=false --network "$net" --ip 198.18.21.13 "$tmp/native.json" 2>&1)
rc=$?
diag "native sidecar layout: exit $rc: $(tail -3 <<<"$out")"
app_state=$(podman inspect --format '{{.State.Status}}' native-app 2>/dev/null)
if [ "$rc" -ne 0 ] && [ "$app_state" != running ] &&
   grep -q "cannot create an init container that has either of lifecycle, livenessProbe, readinessProbe, or startupProbe set" <<<"$out"; then
        ok "native sidecars: podman 4.3 does not run them (play exit $rc, app ${app_state:-not created})"
else
        not_ok "native sidecars: podman 4.3 does not run them"
        diag "podman kube play exited $rc and the app is '$app_state': podman may support native sidecars now; make this a real test"
fi
