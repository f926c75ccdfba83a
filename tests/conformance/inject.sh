#!/usr/bin/env bash
#
# inject: `pilotfish inject` against Istio's injection corpus (SEMANTICS.md, INDEX.md). For
# every in-scope case of tests/conformance/inject/cases.txt it runs pilotfish on the input
# with the case's config and compares, pod by pod, what issue 4 names, with Istio's expected
# output:
#   - which documents were injected, and which passed through or were skipped;
#   - the names and order of the init containers and of the containers;
#   - istio-init's arguments from -p to the end, exactly;
#   - every application container and application init container, field by field (probes,
#     lifecycle hooks, ports, env, everything; Istio's empty "resources: {}" aside);
#   - on the proxy: ISTIO_KUBE_APP_PROBERS, ISTIO_PROMETHEUS_ANNOTATIONS and ISTIO_META_POD_PORTS
#     as JSON values (the last also as text, which Istio's template lays out line by line), its
#     security context (user, group), readiness probe and restartPolicy, and its resources
#     when the input's annotations set them;
#   - the pod's annotations and labels, except the value of sidecar.istio.io/status and the keys
#     that name Istio's own proxy internals (below);
#   - the pod's imagePullSecrets, the volumes its sidecar.istio.io/userVolume adds and the
#     proxy's mounts of them;
# and that injecting pilotfish's output again changes nothing. An error case must exit 1,
# write nothing, and say the case's token. Out-of-scope cases are listed with their reason as
# skips. A scope of in:-ASPECT,... leaves out aspects where pilotfish differs on purpose (the
# reason says why).
#
# A CronJob's pod annotations and labels are read from the pod template merged with
# spec.jobTemplate.metadata: Istio writes them on the Job template (so the pods never get
# them), pilotfish on the pod template (docs/cli/inject.md); the content is compared.
#
# Both sides are turned into JSON by libfyaml's fy-tool and compared with jq, so formatting
# (key order, quoting) does not matter, types do ("15001" is not 15001).

set -u
here=$(cd "$(dirname "$0")" && pwd)
corpus=${TEST_DATA_DIR:?}/istio-inject
cases=$here/inject/cases.txt
: "${PILOTFISH:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in fy-tool jq; do
        command -v $t >/dev/null || { echo "1..0 # SKIP $t not found"; exit 0; }
done

# Keys that name Istio's own proxy internals: pilotfish does not write them.
ignored_keys='^(proxy\.istio\.io/overrides|sidecar\.istio\.io/status)$'

# jq: every pod of a stream of documents, summarised as compared.
summary='
def pods:
  if (.kind // "" | tostring | test("List$")) and ((.items // null) | type) == "array" then .items[] | pods
  elif .kind == "Pod" then {kind, name: .metadata.name, pod: .}
  elif .kind == "CronJob" then {kind, name: .metadata.name,
    pod: ((.spec.jobTemplate.metadata // {}) as $jm | .spec.jobTemplate.spec.template | .metadata = ((.metadata // {}) * $jm))}
  elif ((.spec.template // null) | type) == "object" then {kind, name: .metadata.name, pod: .spec.template}
  else {kind, name: (.metadata.name // null), passthrough: true} end;
def args_from_p: if . == null then null else (index("-p") as $i | if $i == null then . else .[$i:] end) end;
def injected_names: ["istio-proxy", "istio-init", "istio-validation"];
def app_containers: [.[] | select(.name as $n | injected_names | index($n) | not)
  | if .resources == {} then del(.resources) else . end];
def env_json($name): [(.env // [])[] | select(.name == $name) | .value | fromjson] | first;
def proxy_view($res; $mounts):
  if . == null then null else
  { securityContext, readinessProbe, restartPolicy,
    user_mounts: [(.volumeMounts // [])[] | select(.name as $n | $mounts | index($n))],
    probers: env_json("ISTIO_KUBE_APP_PROBERS"), prometheus: env_json("ISTIO_PROMETHEUS_ANNOTATIONS"),
    pod_ports: env_json("ISTIO_META_POD_PORTS"),
    pod_ports_text: ([(.env // [])[] | select(.name == "ISTIO_META_POD_PORTS") | .value] | first) }
  + (if $res then {resources} else {} end) end;
[ .[] | select(. != null) | pods | if .passthrough then . else
  { kind, name,
    injected: ((.pod.metadata.annotations // {}) | has("sidecar.istio.io/status")),
    initContainers: [(.pod.spec.initContainers // [])[] | .name],
    containers: [(.pod.spec.containers // [])[] | .name],
    init_args: ([(.pod.spec.initContainers // [])[] | select(.name == "istio-init")][0].args | args_from_p),
    annotations: ((.pod.metadata.annotations // {}) | with_entries(select(.key | test($ignored) | not))),
    labels: (.pod.metadata.labels // {}),
    imagePullSecrets: (.pod.spec.imagePullSecrets // []),
    user_volumes: (((.pod.metadata.annotations // {})["sidecar.istio.io/userVolume"] // "{}" | fromjson | keys) as $uv
      | [(.pod.spec.volumes // [])[] | select(.name as $n | $uv | index($n))]),
    app_containers: ((.pod.spec.containers // []) | app_containers),
    app_init_containers: ((.pod.spec.initContainers // []) | app_containers),
    proxy: (((.pod.metadata.annotations // {})["sidecar.istio.io/userVolumeMount"] // "{}" | fromjson | keys) as $um
            | [(.pod.spec.containers // [])[], (.pod.spec.initContainers // [])[] | select(.name == "istio-proxy")][0]
            | proxy_view($res; $um)) }
  end ]'

to_json() { fy-tool --dump --mode json "$1" | jq -s -c .; }

n=0
plan=$(grep -cv '^#' "$cases")
echo "1..$((plan * 2))"
while read -r input expected config scope reason; do
        [ -z "$input" ] || [ "${input:0:1}" = "#" ] && continue
        name="$input -> $expected${config:+ ($config)}"
        cfg=()
        [ "$config" != - ] && cfg=(--config "$here/inject/$config.yaml")
        # in:-a.b,-c.d: in scope, but the aspects a.b and c.d differ on purpose (REASON says why).
        drop='[]'
        if [[ "$scope" == in:* ]]; then
                drop=$(tr ',' '\n' <<<"${scope#in:}" | sed 's/^-//' | jq -R 'split(".")' | jq -s -c .)
                scope=in
        fi
        if [ "$scope" != in ] && [ "$scope" != out ]; then
                n=$((n + 1)); echo "not ok $n - $name: unknown scope '$scope' in cases.txt (in, in:-ASPECT,... or out)"
                n=$((n + 1)); echo "not ok $n - $name: idempotent"
                continue
        fi
        if [ "$scope" = out ]; then
                n=$((n + 1)); echo "ok $n - $name # SKIP out of scope: $reason"
                n=$((n + 1)); echo "ok $n - $name: idempotent # SKIP out of scope"
                continue
        fi
        out=$tmp/out.yaml
        "$PILOTFISH" inject -f "$corpus/inputs/$input" "${cfg[@]}" >"$out" 2>"$tmp/err"
        rc=$?
        if [[ "$expected" == error:* ]]; then
                token=${expected#error:}
                n=$((n + 1))
                if [ $rc = 1 ] && [ ! -s "$out" ] && tr 'A-Z' 'a-z' <"$tmp/err" | grep -qF "$token"; then
                        echo "ok $n - $name: exit 1, nothing written, the message says '$token'"
                else
                        echo "not ok $n - $name: exit 1, nothing written, the message says '$token'"
                        echo "# exit $rc, $(wc -c <"$out") bytes written; stderr:"; sed 's/^/#   /' "$tmp/err"
                fi
                n=$((n + 1)); echo "ok $n - $name: idempotent # SKIP an error case"
                continue
        fi
        n=$((n + 1))
        if [ $rc != 0 ]; then
                echo "not ok $n - $name"; echo "# pilotfish inject exited $rc:"; sed 's/^/#   /' "$tmp/err"
                n=$((n + 1)); echo "not ok $n - $name: idempotent"
                continue
        fi
        res=false
        grep -qE 'sidecar\.istio\.io/proxy(CPU|Memory)' "$corpus/inputs/$input" && res=true
        if ! to_json "$out" | jq -S --arg ignored "$ignored_keys" --argjson res "$res" "$summary | map(delpaths($drop))" >"$tmp/got" 2>"$tmp/jqerr" ||
           ! to_json "$corpus/expected/$expected" | jq -S --arg ignored "$ignored_keys" --argjson res "$res" "$summary | map(delpaths($drop))" >"$tmp/want"; then
                echo "not ok $n - $name"; echo "# could not read the output as YAML:"; sed 's/^/#   /' "$tmp/jqerr"
        elif diff -u "$tmp/want" "$tmp/got" >"$tmp/diff"; then
                echo "ok $n - $name"
        else
                echo "not ok $n - $name"; echo "# Istio's expected (-) vs pilotfish (+):"; sed 's/^/#   /' "$tmp/diff"
        fi
        n=$((n + 1))
        "$PILOTFISH" inject -f "$out" "${cfg[@]}" >"$tmp/again" 2>"$tmp/err2"
        if cmp -s "$out" "$tmp/again"; then
                echo "ok $n - $name: injecting the output again changes nothing"
        else
                echo "not ok $n - $name: injecting the output again changes nothing"
                diff -u "$out" "$tmp/again" | head -40 | sed 's/^/#   /'
        fi
done <"$cases"
