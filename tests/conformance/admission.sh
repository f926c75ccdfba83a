#!/usr/bin/env bash
#
# admission: the webhook's AdmissionReview handling (webhook/review.c, through review-tool)
# against the admission corpus (tests/data/istio-inject/admission/) and its answers in expected.tsv
# (the table of ../shared/conformance/istio-inject/admission/README.md), and against every
# in-scope pod of the injection corpus wrapped in an AdmissionReview. For each injected answer
# the patch is applied to the request's pod with an independent RFC 6902 implementation
# (Debian's python3-jsonpatch), and the result must equal what `pilotfish inject` makes of the
# same pod. The answers must carry the request's apiVersion and uid.

set -u
: "${PILOTFISH:?}" "${REVIEW_TOOL:?}" "${TEST_DATA_DIR:?}"
corpus=$TEST_DATA_DIR/istio-inject
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=/usr/bin/python3
for t in jq fy-tool; do
        command -v $t >/dev/null || { echo "1..0 # SKIP $t not found"; exit 0; }
done
$py -c 'import jsonpatch' 2>/dev/null || { echo "1..0 # SKIP python3-jsonpatch not installed"; exit 0; }

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }

# apply_patch REQUEST ANSWER OUT: the request's pod with the answer's patch applied, namespace
# filled from the request (the webhook leaves it to the API server), as sorted JSON.
apply_patch() {
        $py - "$1" "$2" >"$3" <<'EOF'
import base64, json, sys, jsonpatch
req = json.load(open(sys.argv[1]))
ans = json.load(open(sys.argv[2]))
pod = req["request"]["object"]
pod.get("metadata", {}).pop("managedFields", None)
patch = json.loads(base64.b64decode(ans["response"]["patch"]))
out = jsonpatch.apply_patch(pod, patch)
out.setdefault("metadata", {}).setdefault("namespace", req["request"].get("namespace", ""))
print(json.dumps(out, sort_keys=True))
EOF
}

# inject_pod REQUEST OUT: what `pilotfish inject` makes of the request's pod (namespace filled).
# fy_flags: extra fy-tool options (its duplicate-key check is quadratic, so the test of huge
# mappings turns it off for pilotfish's own output).
fy_flags=
inject_pod() {
        jq --arg ns "$(jq -r '.request.namespace // ""' "$1")" \
                '.request.object | del(.metadata.managedFields) | .metadata.namespace = (.metadata.namespace // $ns)' "$1" >"$tmp/pod.json"
        "$PILOTFISH" inject -f "$tmp/pod.json" 2>/dev/null | fy-tool $fy_flags --dump --mode json - | jq -S -c 'select(. != null)' >"$2"
}

# check_answer NAME REQUEST ANSWER APIVERSION UID MESSAGE: the handler's answer to REQUEST is
# as a line of expected.tsv says (its header explains the fields). A patch must also yield
# pilotfish inject's pod (check_patch).
check_answer() {
        local name=$1 req=$2 answer=$3 api=$4 uid=$5 message=$6 ans=$tmp/answer.json desc
        "$REVIEW_TOOL" "$req" >"$ans"
        case $answer in
        patch) desc="allowed, a JSONPatch" ;;
        skip) desc="allowed, no patch, no patchType" ;;
        deny) desc="allowed false" ;;
        *) not_ok "$name: unknown answer '$answer' (patch, skip or deny)"; return ;;
        esac
        [ "$api" = request ] && api=$(jq -r .apiVersion "$req")
        case $api in -) ;; none) desc+=", no apiVersion" ;; *) desc+=", apiVersion $api" ;; esac
        case $uid in
        -) ;;
        request) uid=$(jq -r .request.uid "$req"); desc+=", the request's uid echoed" ;;
        empty) uid=; desc+=", empty uid" ;;
        *) desc+=", uid $uid" ;;
        esac
        [ "$message" = - ] || desc+=", a message matching /$message/"
        if jq -e --arg answer "$answer" --arg api "$api" --arg uid "$5" --arg want_uid "$uid" --arg message "$message" '
                (if $answer == "patch" then .response.allowed == true and .response.patchType == "JSONPatch"
                 elif $answer == "skip" then .response.allowed == true and .response.patch == null and .response.patchType == null
                 else .response.allowed == false end)
                and (if $api == "-" then true
                     elif $api == "none" then (has("apiVersion") or has("kind")) | not
                     else .apiVersion == $api and .kind == "AdmissionReview" end)
                and ($uid == "-" or .response.uid == $want_uid)
                and ($message == "-" or (.response.status.message // "" | test($message)))' "$ans" >/dev/null 2>&1; then
                ok "$name: $desc"
        else
                not_ok "$name: $desc" "$(head -c 600 "$ans")"
                return
        fi
        [ "$answer" = patch ] && check_patch "$name" "$req"
}

# check_injected NAME REQUEST: the answer is a patch that yields pilotfish inject's pod.
check_injected() { check_answer "$1" "$2" patch request request -; }

# check_patch NAME REQUEST: the patch of the answer in $tmp/answer.json, applied to the request's
# pod, is what pilotfish inject makes of it.
check_patch() {
        local name=$1 req=$2 ans=$tmp/answer.json
        if ! apply_patch "$req" "$ans" "$tmp/patched.json" 2>"$tmp/py.err"; then
                not_ok "$name: the patch applies to the pod as sent (python3-jsonpatch)" "$(cat "$tmp/py.err")"
                return
        fi
        inject_pod "$req" "$tmp/injected.json"
        jq -S -c . "$tmp/patched.json" >"$tmp/patched.sorted"
        if cmp -s "$tmp/patched.sorted" "$tmp/injected.json"; then
                ok "$name: the patched pod is what pilotfish inject makes of it"
        else
                not_ok "$name: the patched pod is what pilotfish inject makes of it" \
                        "$(diff <(jq -S . "$tmp/injected.json") <(jq -S . "$tmp/patched.sorted") | head -30)"
        fi
}

# --- the admission corpus: every request, answered as expected.tsv says
while IFS=$'\t' read -r f answer api uid message; do
        [ -z "$f" ] || [ "${f:0:1}" = "#" ] && continue
        check_answer "$f" "$corpus/admission/$f" "$answer" "$api" "$uid" "$message"
done <"$corpus/admission/expected.tsv"
# ... and what the README's table says beyond the answer's kind.
ans=$("$REVIEW_TOOL" "$corpus/admission/v1-pod-create-from-replicaset.json")
patch=$(jq -r .response.patch <<<"$ans" | base64 -d)
if grep -qF '/metadata/annotations/prometheus.io~1port' <<<"$patch" && ! grep -q managedFields <<<"$patch"; then
        ok "from-replicaset: paths escape '/' as ~1, and managedFields are not in the patch"
else
        not_ok "from-replicaset: paths escape '/' as ~1, and managedFields are not in the patch" "$(head -c 800 <<<"$patch")"
fi
envs=$($py -c '
import base64, json, sys, jsonpatch
req = json.load(open(sys.argv[1])); ans = json.loads(sys.argv[2])
pod = jsonpatch.apply_patch(req["request"]["object"], json.loads(base64.b64decode(ans["response"]["patch"])))
c = [c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] if c["name"] == "istio-proxy"][0]
e = {x["name"]: x.get("value") for x in c["env"]}
print(e.get("ISTIO_META_OWNER"), e.get("ISTIO_PROMETHEUS_ANNOTATIONS"), pod["metadata"]["labels"]["service.istio.io/canonical-name"])
' "$corpus/admission/v1-pod-create-from-replicaset.json" "$ans")
if [ "$envs" = 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/productpage-v1 {"scrape":"true","path":"/metrics","port":"9080"} productpage' ]; then
        ok "from-replicaset: owner is the Deployment (hash trimmed), Prometheus settings kept for the proxy, canonical name productpage"
else
        not_ok "from-replicaset: owner, Prometheus settings, canonical name" "$envs"
fi
ans=$("$REVIEW_TOOL" "$corpus/admission/v1-pod-create-job-annotated-dryrun.json")
owner=$($py -c '
import base64, json, sys, jsonpatch
req = json.load(open(sys.argv[1])); ans = json.loads(sys.argv[2])
pod = jsonpatch.apply_patch(req["request"]["object"], json.loads(base64.b64decode(ans["response"]["patch"])))
c = [c for c in pod["spec"]["initContainers"] if c["name"] == "istio-proxy"][0]
print({x["name"]: x.get("value") for x in c["env"]}.get("ISTIO_META_OWNER"), c.get("restartPolicy"))
' "$corpus/admission/v1-pod-create-job-annotated-dryrun.json" "$ans")
if [ "$owner" = "kubernetes://apis/batch/v1/namespaces/analytics/cronjobs/nightly-report Always" ]; then
        ok "job (dryRun, no namespace in the object): CronJob owner in the request's namespace, native proxy"
else
        not_ok "job: CronJob owner in the request's namespace, native proxy" "$owner"
fi
# --- duplicate keys: JSON and the API server forbid them; libfyaml's own check is off (it is
# quadratic), so the webhook's must catch every spelling of a repeated key.
dup_case() {
        local name=$1 labels=$2 want=$3 ans
        jq --argjson l "$labels" '.request.object.metadata.labels = {}' "$corpus/admission/v1-pod-create-from-replicaset.json" |
                $py -c 'import sys; t = sys.stdin.read(); print(t.replace("\"labels\": {}", "\"labels\": " + sys.argv[1], 1))' "$labels" >"$tmp/dup.json"
        ans=$("$REVIEW_TOOL" "$tmp/dup.json")
        if [ "$(jq -r '[.response.allowed, .response.uid] | @tsv' <<<"$ans")" = "$(printf 'false\t')" ] &&
           jq -e --arg w "$want" '.response.status.message | contains($w)' <<<"$ans" >/dev/null; then
                ok "duplicate key ($name): allowed false, the message names it"
        else
                not_ok "duplicate key ($name): allowed false, the message names it ($want)" "$(head -c 600 <<<"$ans")"
        fi
}
dup_case "two equal keys" '{"app": "a", "app": "b"}' 'duplicate key "app" at line'
dup_case "one escaped" '{"app": "a", "\u0061pp": "b"}' 'duplicate key "app"'
dup_case "among 40 keys (sorted check)" \
        "$($py -c 'import json; d = ["\"k%02d\": \"v\"" % i for i in range(40)]; d.insert(30, "\"k05\": \"w\""); print("{" + ", ".join(d) + "}")')" \
        'duplicate key "k05"'
"$REVIEW_TOOL" "$corpus/admission/v1-pod-create-from-replicaset.json" >"$tmp/plain.json"
if jq -e '.response.allowed == true' "$tmp/plain.json" >/dev/null; then
        ok "no duplicate: the same request with distinct keys is injected"
else
        not_ok "no duplicate: the same request with distinct keys is injected" "$(head -c 600 "$tmp/plain.json")"
fi

# --- mappings of 150,000 keys (a 2 MiB request): before, one such request
# held a CPU for hours (lookups by walking the mapping, twice quadratic). The answer must come
# and be right: the patch, applied, is what pilotfish inject makes of the pod.
$py - "$corpus/admission/v1-pod-create-from-replicaset.json" >"$tmp/huge.json" <<'EOF'
import json, sys
req = json.load(open(sys.argv[1]))
meta = req["request"]["object"]["metadata"]
meta["labels"].update({"l%06d" % i: "v" for i in range(75000)})
meta["annotations"].update({"a%06d" % i: "v" for i in range(75000)})
print(json.dumps(req, separators=(",", ":")))
EOF
fy_flags=--allow-duplicate-keys
check_injected "150,000 labels and annotations ($(($(stat -c %s "$tmp/huge.json") / 1024)) KiB)" "$tmp/huge.json"
# Long lists, each of which was quadratic somewhere (the patch indexed libfyaml's linked-list
# sequences item by item: 45 s for 50,000 env entries; the probe table checked each path
# against all earlier ones; a CIDR list was scanned to its end for white space per entry).
$py - "$corpus/admission/v1-pod-create-from-replicaset.json" "$tmp" <<'EOF'
import copy, json, sys
base = json.load(open(sys.argv[1]))
def save(name, f):
    r = copy.deepcopy(base)
    f(r["request"]["object"])
    open("%s/long-%s.json" % (sys.argv[2], name), "w").write(json.dumps(r, separators=(",", ":")))
save("env", lambda o: o["spec"]["containers"][0].__setitem__("env", [{"name": "E%d" % i, "value": "v"} for i in range(50000)]))
save("volumes", lambda o: o["spec"].__setitem__("volumes", [{"name": "v%d" % i, "emptyDir": {}} for i in range(50000)]))
save("probes", lambda o: o["spec"].__setitem__("containers", [{"name": "c%d" % i, "image": "x",
     "readinessProbe": {"httpGet": {"path": "/r", "port": 8080}}, "livenessProbe": {"tcpSocket": {"port": 80}}} for i in range(5000)]))
save("cidrs", lambda o: o["metadata"]["annotations"].__setitem__("traffic.sidecar.istio.io/excludeOutboundIPRanges",
     ",".join("10.%d.%d.0/24" % (i // 256, i % 256) for i in range(60000))))
EOF
for l in env volumes probes cidrs; do
        check_injected "a long list ($l, $(($(stat -c %s "$tmp/long-$l.json") / 1024)) KiB)" "$tmp/long-$l.json"
done
fy_flags=

# --- URL path parameters (SEMANTICS 1.3)
ans=$("$REVIEW_TOOL" "$corpus/admission/v1beta1-pod-create-kubectl-run.json" /inject/cluster/east/net/net1/extra/a--slash--b)
tail=$($py -c '
import base64, json, sys, jsonpatch
req = json.load(open(sys.argv[1])); ans = json.loads(sys.argv[2])
pod = jsonpatch.apply_patch(req["request"]["object"], json.loads(base64.b64decode(ans["response"]["patch"])))
c = [c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"] if c["name"] == "istio-proxy"][0]
print(" ".join("%s=%s" % (x["name"], x.get("value")) for x in c["env"][-3:]))
' "$corpus/admission/v1beta1-pod-create-kubectl-run.json" "$ans")
if [ "$tail" = "EXTRA=a/b ISTIO_META_CLUSTER_ID=east ISTIO_META_NETWORK=net1" ]; then
        ok "/inject/cluster/east/net/net1/extra/a--slash--b: the proxy's env ends with the overrides, sorted, --slash-- decoded"
else
        not_ok "/inject/... path parameters" "$tail"
fi

# --- every in-scope pod of the injection corpus, wrapped in an AdmissionReview
while read -r input expected config scope _; do
        [ -z "$input" ] || [ "${input:0:1}" = "#" ] && continue
        [ "$config" = - ] && [[ "$scope" == in* ]] && [[ "$expected" != error:* ]] || continue
        [ "$expected" = "$input.injected" ] || continue
        while read -r pod; do
                jq -n --argjson pod "$pod" '{apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
                        request: {uid: "corpus", namespace: "default", operation: "CREATE", object: $pod}}' >"$tmp/req.json"
                check_injected "corpus $input ($(jq -r '.metadata.name // .metadata.generateName // "pod"' <<<"$pod"))" "$tmp/req.json"
        done < <(fy-tool --dump --mode json "$corpus/inputs/$input" | jq -c 'select(. != null)' |
                jq -c 'if .kind == "List" then .items[] else . end
                       | if .kind == "Pod" then . elif .kind == "CronJob" then (.spec.jobTemplate.spec.template + {kind: "Pod", apiVersion: "v1"})
                         elif (.spec.template | type) == "object" then (.spec.template + {kind: "Pod", apiVersion: "v1"}) else empty end
                       | select(.spec.hostNetwork != true and ((.metadata.labels // {})["sidecar.istio.io/inject"] // (.metadata.annotations // {})["sidecar.istio.io/inject"]) != "false")')
done <"$here/inject/cases.txt"
echo "1..$n"
