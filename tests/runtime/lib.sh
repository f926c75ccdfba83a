# shellcheck shell=bash
#
# lib.sh: sourced by the runtime tests (tests/runtime/NNNN-*.sh), which run pods that `pilotfish
# inject` produced under a real container runtime, Debian's podman 4.3 with runc, from the image
# deploy/Dockerfile builds. It adds to the e2e helpers (TAP, skips, scratch directory, the
# address rule): podman's configuration in the test's own directory (scripts/podman/lib.sh),
# the image build, a podman network on a subnet of 198.18.0.0/15 that the test creates, and
# cleanup of every pod, network and image the test made, also when it fails.
#
# podman 4.3 limits the tests work around, each where it is applied (rt_podman_fix):
#   - annotation values over 63 characters are refused (containers/podman#21663, fixed in podman 5.0), and
#     Istio's sidecar.istio.io/status is longer: it is left out of the played pod;
#   - fieldRef environment variables other than metadata.name and metadata.uid are refused
#     (containers/podman#12756; podman
#     4.3's play fills only metadata.name and metadata.uid): metadata.namespace, status.podIP and spec.serviceAccountName are
#     given literally, with the values the API server would fill in;
#   - a pod's restartPolicy Always restarts finished init containers (containers/podman#15631):
#     the test pods say OnFailure;
#   - every containerPort is published on the host (containers/podman#17028, fixed in
#     podman 4.7), so two pods cannot
#     both declare the proxy's 15090: the second pod's is dropped.
# Nothing else in the injected YAML is changed.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"
# shellcheck source=../../scripts/podman/lib.sh
. "$here/../../scripts/podman/lib.sh"
RT_ROOT=$(cd "$here/../.." && pwd)
RT_PODS=()
RT_NETWORKS=()
RT_SECRETS=()
RT_VOLUMES=()
RT_IMAGE=""

eval "_rt_e2e_cleanup() $(declare -f e2e_cleanup | tail -n +2)"
# _rt_remove_each "CMD ARGS" NAME...: runs CMD ARGS NAME for each name, quietly (cleanup goes on
# past anything already gone).
_rt_remove_each() {
        local cmd=$1 n
        shift
        for n in "$@"; do
                $cmd "$n" >/dev/null 2>&1
        done
}

e2e_cleanup() {
        _rt_remove_each "timeout 60 podman pod rm -f -t 1" "${RT_PODS[@]}"
        _rt_remove_each "podman network rm -f" "${RT_NETWORKS[@]}"
        _rt_remove_each "podman secret rm" "${RT_SECRETS[@]}"
        _rt_remove_each "podman volume rm -f" "${RT_VOLUMES[@]}"
        RT_PODS=() RT_NETWORKS=() RT_SECRETS=() RT_VOLUMES=()
        _rt_e2e_cleanup
}

# rt_init: the e2e checks plus podman's; writes the podman configuration and builds the images.
rt_init() {
        e2e_init
        RT_START=$(date +%s)
        command -v podman >/dev/null || skip_all "podman not found (scripts/install-deps.sh installs it)"
        command -v runc >/dev/null || skip_all "runc not found"
        pf_podman_setup "$E2E_TMP/podman"
        cd "$E2E_TMP" || bail "cd $E2E_TMP"
        podman info >/dev/null 2>&1 || skip_all "podman does not work here: $(podman info 2>&1 | tail -1)"
}

# rt_build_image: builds pilotfish's image with scripts/image.sh (deploy/Dockerfile as written)
# and the application image: busybox-static alone, for httpd, wget and sh.
rt_build_image() {
        local out
        if ! out=$(bash "$RT_ROOT/scripts/image.sh" "$E2E_TMP/build" 2>&1); then
                diag "$out"
                bail "make image failed"
        fi
        diag "$out"
        RT_IMAGE=$(sed -n 's/^image: \(pilotfish:[^,]*\),.*/\1/p' <<<"$out")
        mkdir -p "$E2E_TMP/app/www"
        cp /bin/busybox "$E2E_TMP/app/busybox"
        echo "hello from the server pod" >"$E2E_TMP/app/www/index.html"
        printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n' >"$E2E_TMP/app/Containerfile"
        local prev
        prev=$(podman image inspect --format '{{.Id}}' localhost/pilotfish-testapp:1 2>/dev/null)
        must podman build --pull=never --network=none -t localhost/pilotfish-testapp:1 "$E2E_TMP/app"
        # The image this one replaced, now untagged, was the previous run's.
        if [ -n "$prev" ] && [ "$prev" != "$(podman image inspect --format '{{.Id}}' localhost/pilotfish-testapp:1)" ]; then
                podman rmi "$prev" >/dev/null 2>&1
        fi
}

# rt_network NAME SUBNET: an internal podman network (no route out, no NAT) on SUBNET.
rt_network() {
        addr_allowed "$2" || bail "subnet $2 is outside 198.18.0.0/15"
        podman network rm -f "$1" >/dev/null 2>&1
        must podman network create --internal --disable-dns --subnet "$2" "$1"
        RT_NETWORKS+=("$1")
}

# rt_podman_fix IN.yaml OUT.json NAMESPACE POD_IP DROP_15090: the podman 4.3 workarounds above.
rt_podman_fix() {
        fy-tool --mode json --dump "$1" | jq -s '.[0]' | jq --arg ns "$3" --arg ip "$4" --arg drop "$5" '
          del(.metadata.annotations["sidecar.istio.io/status"])
          | (.spec.containers[], .spec.initContainers[]?) |= (if .env then .env |= map(
              if .valueFrom.fieldRef.fieldPath == "metadata.namespace" then {name, value: $ns}
              elif .valueFrom.fieldRef.fieldPath == "status.podIP" then {name, value: $ip}
              elif .valueFrom.fieldRef.fieldPath == "spec.serviceAccountName" then {name, value: "default"}
              else . end) else . end)
          | if $drop == "1" then (.spec.containers[], .spec.initContainers[]?) |=
              (if .name == "istio-proxy" then .ports |= map(select(.containerPort != 15090)) else . end)
            else . end' >"$2"
}

# rt_same_but_workarounds INJECTED.yaml PLAYED.json: the two are equal once what rt_podman_fix
# touches is taken out of both (the status annotation, the three fieldRef variables, the proxy's
# 15090 port); prints the difference otherwise.
rt_same_but_workarounds() {
        local norm='del(.metadata.annotations["sidecar.istio.io/status"])
          | (.spec.containers[], .spec.initContainers[]?) |= (
              (if .env then .env |= map(select(.name | IN("POD_NAMESPACE", "INSTANCE_IP", "SERVICE_ACCOUNT") | not)) else . end)
              | (if .name == "istio-proxy" and .ports then .ports |= map(select(.containerPort != 15090)) else . end))'
        diff <(fy-tool --mode json --dump "$1" | jq -s '.[0]' | jq -S "$norm") <(jq -S "$norm" "$2")
}

# rt_play NAME FILE NETWORK IP: podman kube play, remembered for cleanup. podman builds an image
# named pilotfish from a ./pilotfish directory instead of using local storage's, and 4.3 still
# looks for one with --build=false (it failed on Meson's build/pilotfish binary), so the tests
# run from their scratch directory (rt_init).
rt_play() {
        addr_allowed "$4" || bail "pod address $4 is outside 198.18.0.0/15"
        RT_PODS+=("$1")
        must timeout 120 podman kube play --build=false --network "$3" --ip "$4" "$2"
}

# rt_infra_pid POD: the pid of the pod's infra process, whose network namespace is the pod's.
rt_infra_pid() {
        podman pod inspect --format '{{.InfraContainerID}}' "$1" | xargs podman inspect --format '{{.State.Pid}}'
}

# rt_exit_code CONTAINER: the container's exit code once it has exited: from podman inspect
# while it exists, else from its last "died" event since the test started (podman removes
# init containers once they have run). Empty while it runs.
rt_exit_code() {
        if podman container exists "$1"; then
                [ "$(podman inspect --format '{{.State.Status}}' "$1")" = exited ] &&
                        podman inspect --format '{{.State.ExitCode}}' "$1"
                return 0
        fi
        podman events --stream=false --since "$RT_START" --filter "container=$1" --filter event=died \
                --format '{{.ContainerExitCode}}' 2>/dev/null | tail -1
}

# rt_wait CMD...: runs CMD every 0.2 s until it succeeds, for up to 30 s.
rt_wait() {
        local i
        for i in $(seq 150); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.2
        done
        return 1
}

# rt_wait_ready POD_PID: waits up to 20 s for /healthz/ready on 15021 in the pod.
rt_wait_ready() {
        local i
        for i in $(seq 100); do
                nsenter -t "$1" -n curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && return 0
                sleep 0.2
        done
        return 1
}
