#!/usr/bin/env bash
#
# 0200-webhook: `pilotfish webhook` over real HTTPS (docs/cli/webhook.md), in a namespace of its
# own (loopback only), as UID 1337, for the Service pilotfish-webhook.istio-system.svc. curl
# plays the API server: it
# verifies the certificate, for that name, against the CA bundle of the registration that
# `pilotfish webhook config` prints (--resolve sends the name to 127.0.0.1). The test proves:
#   - `pilotfish certs` makes a CA and a serving certificate for the Service's names, the key
#     0600; `pilotfish webhook config` embeds that CA and registers CREATE of pods in namespaces
#     labelled istio-injection=enabled but kube-system and its own, skipping pods labelled
#     sidecar.istio.io/inject=false, failurePolicy Fail, reinvocation IfNeeded, v1 and v1beta1,
#     the Service's port 443 and path /inject;
#   - every request of the admission corpus gets HTTP 200 and, over HTTPS, exactly the answer
#     the handler gives (tests/conformance/admission.sh checks those answers themselves);
#   - the transport contract: an empty body 400 "no body found", a Content-Type other than
#     exactly application/json 415, a 7 MiB body 400, a path other than /inject 404;
#   - a client that stops sending in the middle of a request does not delay the others, and is
#     cut off at the read timeout;
#   - TLS 1.1 is refused, TLS 1.2 and 1.3 work; keep-alive serves several requests on one
#     connection;
#   - /healthz and /readyz answer 200; /metrics passes promtool and counts what was sent;
#   - replacing the certificate and key files while requests run: new connections get the new
#     certificate (verified against a new CA), and no request fails;
#   - the answer cache: the same request with another uid is answered from it (the metrics
#     count the hit) with the handler's answer for that uid; a changed label or another path
#     is computed afresh; --answer-cache 0 turns it off;
#   - every file input may be a pipe or FIFO (the webhook's --config <(...) shared the
#     injector's segmentation fault in libfyaml): `webhook config --ca-bundle <(cat ca.crt)` prints
#     what the file gives; a webhook with --tls-cert <(cat tls.crt), --tls-key from a FIFO and
#     --config <(...) of two keys serves HTTPS verified by its CA, applies the config, says the
#     pair is read once, and still answers seconds later (it never reopens a pipe);
#   - SIGTERM: exit 0.

. "$(dirname "$0")/lib.sh"
e2e_init
for t in openssl curl jq promtool; do command -v $t >/dev/null || skip_all "$t not found"; done
[ -x "${REVIEW_TOOL:-}" ] || bail "REVIEW_TOOL must name tests/conformance/review-tool"

T=$E2E_TMP
corpus=$TEST_DATA_DIR/istio-inject/admission
NAME=pilotfish-webhook.istio-system.svc
PORT=15017
URL=https://$NAME:$PORT
netns_new w

# Two CAs and serving certificates for the Service, made by `pilotfish certs` (the second for
# the rotation); the API server's CA bundle is the one `pilotfish webhook config` prints.
for d in a b; do
        out=$("$PILOTFISH" certs --service pilotfish-webhook --namespace istio-system --out "$T/$d" --days 2 2>&1) ||
                bail "pilotfish certs failed: $out"
done
assert_match "pilotfish certs writes ca.crt, tls.crt and tls.key for the Service" "$out" \
        "^wrote .*/ca.crt, .*/tls.crt and .*/tls.key for pilotfish-webhook.istio-system.svc, valid 2 days"
assert_eq "... the key is readable by its owner only (0600)" "$(stat -c %a "$T/a/tls.key")" 600
if openssl verify -CAfile "$T/a/ca.crt" "$T/a/tls.crt" >/dev/null 2>&1 &&
   openssl x509 -in "$T/a/tls.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:$NAME, DNS:$NAME.cluster.local"; then
        ok "... the serving certificate verifies against the CA and names $NAME and $NAME.cluster.local"
else
        not_ok "... the serving certificate verifies against the CA and names the Service"
fi
"$PILOTFISH" webhook config --ca-bundle "$T/a/ca.crt" >"$T/registration.yaml" || bail "pilotfish webhook config failed"
fy-tool --dump --mode json "$T/registration.yaml" | jq -c 'select(. != null)' >"$T/registration.json"
jq -r '.webhooks[0].clientConfig.caBundle' "$T/registration.json" | base64 -d >"$T/bundle.pem"
if cmp -s "$T/bundle.pem" "$T/a/ca.crt"; then
        ok "pilotfish webhook config: the caBundle is the CA, base64"
else
        not_ok "pilotfish webhook config: the caBundle is the CA, base64"
fi
reg=$(jq -c '.webhooks[0] | [.rules, .namespaceSelector, .objectSelector, .sideEffects, .failurePolicy,
        .reinvocationPolicy, .admissionReviewVersions, .clientConfig.service, .timeoutSeconds]' "$T/registration.json")
assert_eq "... CREATE pods, istio-injection=enabled except kube-system and istio-system, inject=false skipped, Fail, IfNeeded, v1+v1beta1, 443 /inject" \
        "$reg" '[[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}],{"matchExpressions":[{"key":"istio-injection","operator":"In","values":["enabled"]},{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","istio-system"]}]},{"matchExpressions":[{"key":"sidecar.istio.io/inject","operator":"NotIn","values":["false"]}]},"None","Fail","IfNeeded",["v1","v1beta1"],{"name":"pilotfish-webhook","namespace":"istio-system","path":"/inject","port":443},10]'
mkdir -p "$T/live"
cp "$T/a/tls.crt" "$T/a/tls.key" "$T/live/"
chmod 0755 "$T" "$T/live"
chmod 0644 "$T/live/"*

# The webhook runs as 1337 and `pilotfish webhook` execs pilotfish-webhook from its own
# directory: both binaries go where 1337 may look (a checkout may sit in a 0700 directory).
mkdir -p "$T/bin"
cp "$PILOTFISH" "$(dirname "$PILOTFISH")/pilotfish-webhook" "$T/bin/"
chmod 0755 "$T/bin" "$T/bin/"*
ip netns exec "$(ns w)" setpriv --reuid=1337 --regid=1337 --clear-groups "$T/bin/pilotfish" webhook \
        --tls-cert "$T/live/tls.crt" --tls-key "$T/live/tls.key" --read-timeout 3 \
        >"$T/webhook.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
WPID=$!
E2E_PIDS+=("$WPID")
# wcurl CA ARGS...: curl as the API server would call: verified against CA, for $NAME.
wcurl() {
        local ca=$1
        shift
        in_ns w curl -sS --max-time 10 --cacert "$ca" --resolve "$NAME:$PORT:127.0.0.1" "$@"
}
for _ in $(seq 50); do
        [ "$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' "$URL/healthz" 2>/dev/null)" = 200 ] && break
        sleep 0.1
done
assert_eq "GET /healthz over HTTPS, verified with the registration's caBundle for $NAME: 200" \
        "$(wcurl "$T/bundle.pem" -o /dev/null -w '%{http_code}' "$URL/healthz")" 200
assert_eq "GET /readyz: 200" "$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' "$URL/readyz")" 200

# post FILE [CURL-ARGS...]: POST FILE to /inject; the body lands in $T/answer, prints the status.
post() {
        local f=$1
        shift
        wcurl "$T/a/ca.crt" -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
                --data-binary "@$f" "$@" "$URL/inject"
}
sent=0
for f in "$corpus"/*.json "$corpus"/negative/*; do
        code=$(post "$f")
        sent=$((sent + 1))
        "$REVIEW_TOOL" "$f" >"$T/want"
        if [ "$code" = 200 ] && [ "$(jq -S -c . "$T/answer")" = "$(jq -S -c . "$T/want")" ]; then
                ok "$(basename "$f"): 200 and the handler's answer over HTTPS"
        else
                not_ok "$(basename "$f"): 200 and the handler's answer over HTTPS"
                diag "status $code; got $(head -c 300 "$T/answer")"
        fi
done

: >"$T/empty"
assert_eq "an empty body: 400" "$(post "$T/empty")" 400
assert_match "... saying 'no body found'" "$(cat "$T/answer")" "no body found"
code=$(wcurl "$T/a/ca.crt" -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/json; charset=utf-8' \
        --data-binary "@$corpus/v1-pod-create-from-replicaset.json" "$URL/inject")
assert_eq "Content-Type 'application/json; charset=utf-8' (not exactly application/json): 415" "$code" 415
head -c $((7 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$T/big"
assert_eq "a 7 MiB body: 400" "$(post "$T/big")" 400
assert_eq "POST /other: 404" "$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$corpus/v1-pod-create-from-replicaset.json" "$URL/other")" 404

# A client that stops sending in the middle of a request (10 of 1000 body bytes), held open.
{
        printf 'POST /inject HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"partial":' "$NAME"
        sleep 6
} | ip netns exec "$(ns w)" timeout 8 openssl s_client -quiet -connect 127.0.0.1:$PORT -servername "$NAME" \
        -CAfile "$T/a/ca.crt" >"$T/stalled.out" 2>&1 &
stalled=$!
sleep 0.5
start=$(date +%s%N)
ok_count=0
for i in 1 2 3 4 5; do
        [ "$(post "$corpus/v1beta1-pod-create-kubectl-run.json")" = 200 ] && ok_count=$((ok_count + 1))
done
ms=$((($(date +%s%N) - start) / 1000000))
sent=$((sent + 5))
if [ "$ok_count" = 5 ] && [ "$ms" -lt 2500 ]; then
        ok "with a client stalled mid-request, 5 other requests are all answered ($ms ms)"
else
        not_ok "with a client stalled mid-request, 5 other requests are all answered" "$ok_count of 5 in $ms ms"
fi
wait "$stalled"
if ! grep -q "HTTP/1.1 200" "$T/stalled.out"; then
        ok "the stalled request got no answer (cut off at the 3 s read timeout, not served half-read)"
else
        not_ok "the stalled request got no answer" "$(head -c 300 "$T/stalled.out")"
fi

if wcurl "$T/a/ca.crt" -o /dev/null --tls-max 1.1 "$URL/healthz" 2>/dev/null; then
        not_ok "TLS 1.1 is refused"
else
        ok "TLS 1.1 is refused"
fi
assert_eq "TLS 1.2 works" "$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$URL/healthz")" 200
assert_eq "TLS 1.3 works" "$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' --tlsv1.3 "$URL/healthz")" 200
n=$(wcurl "$T/a/ca.crt" -o /dev/null -w '%{num_connects} ' -H 'Content-Type: application/json' \
        --data-binary "@$corpus/v1beta1-pod-create-kubectl-run.json" "$URL/inject" \
        --next --cacert "$T/a/ca.crt" --resolve "$NAME:$PORT:127.0.0.1" -o /dev/null -w '%{num_connects}' \
        -H 'Content-Type: application/json' --data-binary "@$corpus/v1beta1-pod-create-kubectl-run.json" "$URL/inject")
sent=$((sent + 2))
assert_eq "keep-alive: two requests, one connection (curl's num_connects: 1 then 0)" "$n" "1 0"

wcurl "$T/a/ca.crt" "$URL/metrics" >"$T/metrics"
if out=$(promtool check metrics <"$T/metrics" 2>&1); then
        ok "promtool accepts GET /metrics"
else
        not_ok "promtool accepts GET /metrics" "$out"
fi
# Counted: every POST that reached the handler or its Content-Type and body checks.
got=$(awk '$1 == "sidecar_injection_requests_total" { print $2 }' "$T/metrics")
want=$((sent + 2))      # + the empty body and the wrong Content-Type; the 7 MiB body is refused first
assert_eq "sidecar_injection_requests_total counts the requests sent ($want)" "$got" "$want"
assert_eq "sidecar_injection_skip_total counts the host-network pod (1)" \
        "$(awk '$1 == "sidecar_injection_skip_total" { print $2 }' "$T/metrics")" 1

# The answer cache: the same request with another uid is answered from it, and the answer is
# the handler's for that uid; a request that differs anywhere else is computed afresh.
metric() { wcurl "$T/a/ca.crt" "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# same_answer NAME FILE [PATH]: POST FILE (to /inject or PATH) gives the handler's own answer.
same_answer() {
        local name=$1 f=$2 path=${3:-/inject} code
        code=$(wcurl "$T/a/ca.crt" -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
                --data-binary "@$f" "https://$NAME:$PORT$path")
        "$REVIEW_TOOL" "$f" "$path" >"$T/want"
        if [ "$code" = 200 ] && [ "$(jq -S -c . "$T/answer")" = "$(jq -S -c . "$T/want")" ]; then
                ok "$name"
        else
                not_ok "$name" "status $code; got $(head -c 300 "$T/answer")"
        fi
}
src=$corpus/v1-pod-create-from-replicaset.json
for u in 1 2; do
        jq -c --arg u "11111111-aaaa-4bbb-8ccc-00000000000$u" '.request.uid = $u' "$src" >"$T/burst$u.json"
done
jq -c '.request.uid = "11111111-aaaa-4bbb-8ccc-000000000003" | .request.object.metadata.labels.app = "reviews"' \
        "$src" >"$T/burst3.json"
h0=$(metric pilotfish_webhook_answer_cache_hits_total)
m0=$(metric pilotfish_webhook_answer_cache_misses_total)
same_answer "answer cache: a new request is injected (the handler's answer)" "$T/burst1.json"
same_answer "... the same request with another uid: the handler's answer, with that uid" "$T/burst2.json"
assert_eq "... which came from the cache (hits +1, misses +1)" \
        "$(($(metric pilotfish_webhook_answer_cache_hits_total) - h0)) $(($(metric pilotfish_webhook_answer_cache_misses_total) - m0))" "1 1"
assert_eq "... and carries the second uid" "$(jq -r .response.uid "$T/answer")" 11111111-aaaa-4bbb-8ccc-000000000002
same_answer "... one label changed (app=reviews): computed, the handler's answer" "$T/burst3.json"
same_answer "... the same body on /inject/cluster/east: computed, the handler's answer" "$T/burst2.json" /inject/cluster/east
assert_eq "... neither came from the cache (misses +2)" \
        "$(($(metric pilotfish_webhook_answer_cache_hits_total) - h0)) $(($(metric pilotfish_webhook_answer_cache_misses_total) - m0))" "1 3"

# Rotation under load: 10 s of requests while the files are replaced.
(
        fails=0
        for i in $(seq 40); do
                code=$(in_ns w curl -sS --max-time 10 -k --resolve "$NAME:$PORT:127.0.0.1" -o /dev/null -w '%{http_code}' \
                        -H 'Content-Type: application/json' --data-binary "@$corpus/v1-pod-create-from-replicaset.json" \
                        "$URL/inject" 2>/dev/null)
                [ "$code" = 200 ] || fails=$((fails + 1))
                sleep 0.05
        done
        echo "$fails" >"$T/load.fails"
) &
load=$!
sleep 0.5
cp "$T/b/tls.key" "$T/live/tls.key.new" && cp "$T/b/tls.crt" "$T/live/tls.crt.new"
chmod 0644 "$T/live/"*.new
mv "$T/live/tls.key.new" "$T/live/tls.key"
mv "$T/live/tls.crt.new" "$T/live/tls.crt"
rotated=no
for _ in $(seq 30); do
        if [ "$(wcurl "$T/b/ca.crt" -o /dev/null -w '%{http_code}' "$URL/healthz" 2>/dev/null)" = 200 ]; then
                rotated=yes
                break
        fi
        sleep 0.2
done
assert_eq "after the files are replaced, new connections get the new certificate (verified against the new CA)" "$rotated" yes
if wcurl "$T/a/ca.crt" -o /dev/null "$URL/healthz" 2>/dev/null; then
        not_ok "... and no longer the old one"
else
        ok "... and no longer the old one"
fi
wait "$load"
assert_eq "no request failed during the rotation (40 requests)" "$(cat "$T/load.fails")" 0
grep -q "TLS certificate reloaded" "$T/webhook.log" && ok "the log says the certificate was reloaded" ||
        not_ok "the log says the certificate was reloaded"

# --answer-cache 0: a second webhook (port 15018) computes every answer.
ip netns exec "$(ns w)" setpriv --reuid=1337 --regid=1337 --clear-groups "$T/bin/pilotfish" webhook \
        --tls-cert "$T/live/tls.crt" --tls-key "$T/live/tls.key" --port 15018 --answer-cache 0 \
        >"$T/webhook0.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
W0PID=$!
E2E_PIDS+=("$W0PID")
for _ in $(seq 50); do
        [ "$(PORT=15018 wcurl "$T/b/ca.crt" -o /dev/null -w '%{http_code}' "https://$NAME:15018/healthz" 2>/dev/null)" = 200 ] && break
        sleep 0.1
done
answers=
for u in 1 2; do
        PORT=15018 wcurl "$T/b/ca.crt" -H 'Content-Type: application/json' --data-binary "@$T/burst$u.json" "https://$NAME:15018/inject" |
                jq -r '.response.uid + " " + (.response.allowed | tostring)' >"$T/a0"
        answers="$answers$(cat "$T/a0");"
done
assert_eq "--answer-cache 0: both uids injected" "$answers" \
        "11111111-aaaa-4bbb-8ccc-000000000001 true;11111111-aaaa-4bbb-8ccc-000000000002 true;"
assert_eq "... and nothing came from a cache (hits 0, misses 0)" \
        "$(PORT=15018 wcurl "$T/b/ca.crt" "https://$NAME:15018/metrics" | awk '$1 ~ /answer_cache_(hits|misses)_total/ { printf "%s ", $2 }')" "0 0 "
kill -TERM "$W0PID"

# File inputs from pipes and a FIFO: a third webhook (port 15019, as root: a pipe made by this
# shell is its own, mode 0600), with the first pair and a config of two keys.
"$PILOTFISH" webhook config --ca-bundle <(cat "$T/a/ca.crt") >"$T/registration-pipe.yaml" 2>&1
if cmp -s "$T/registration-pipe.yaml" "$T/registration.yaml"; then
        ok "webhook config --ca-bundle <(cat ca.crt): what the file gives"
else
        not_ok "webhook config --ca-bundle <(cat ca.crt): what the file gives" "$(head -c 300 "$T/registration-pipe.yaml")"
fi
mkfifo "$T/key.fifo"
{ sleep 0.2; cat "$T/a/tls.key"; } >"$T/key.fifo" &
E2E_PIDS+=("$!")
in_ns w "$T/bin/pilotfish" webhook --tls-cert <(cat "$T/a/tls.crt") --tls-key "$T/key.fifo" --port 15019 \
        --config <(printf 'image: registry.example.com/pilotfish:9.9\npolicy: enabled\n') \
        >"$T/webhook-pipe.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
WPPID=$!
E2E_PIDS+=("$WPPID")
for _ in $(seq 50); do
        [ "$(PORT=15019 wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' "https://$NAME:15019/healthz" 2>/dev/null)" = 200 ] && break
        sleep 0.1
done
assert_eq "--tls-cert <(cat tls.crt), --tls-key FIFO, --config <(...): GET /healthz verified by the CA: 200" \
        "$(PORT=15019 wcurl "$T/a/ca.crt" -o /dev/null -w '%{http_code}' "https://$NAME:15019/healthz")" 200
code=$(PORT=15019 wcurl "$T/a/ca.crt" -o "$T/answer" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "@$T/burst1.json" "https://$NAME:15019/inject")
if [ "$code" = 200 ] && jq -r .response.patch "$T/answer" | base64 -d | grep -qF 'registry.example.com/pilotfish:9.9'; then
        ok "... POST /inject injects with the config's image (the config came through a pipe)"
else
        not_ok "... POST /inject injects with the config's image" "status $code; $(head -c 300 "$T/answer")"
fi
assert_match "... the log says the pair is read once, not watched" "$(cat "$T/webhook-pipe.log")" \
        "is not a regular file \(a pipe\?\): read once, never reloaded"
sleep 1.2
assert_eq "... 1.2 s later (past the once-a-second look at the files) still 200: the pipes are not reopened" \
        "$(PORT=15019 wcurl "$T/a/ca.crt" --max-time 5 -o /dev/null -w '%{http_code}' "https://$NAME:15019/healthz")" 200
if ! grep -q "not reloaded" "$T/webhook-pipe.log"; then
        ok "... and no reload was tried"
else
        not_ok "... and no reload was tried" "$(cat "$T/webhook-pipe.log")"
fi
kill -TERM "$WPPID"
out=$("$PILOTFISH" webhook --tls-cert "$T/live/tls.crt" --tls-key "$T/live/tls.key" --answer-cache 5000 2>&1)
assert_eq "--answer-cache 5000: exit 1" "$?" 1
assert_match "... naming the flag and its range" "$out" "--answer-cache: '5000' is not a number in 0..4096"

kill -TERM "$WPID"
code=running
for _ in $(seq 100); do
        kill -0 "$WPID" 2>/dev/null || { wait "$WPID"; code=$?; break; }
        sleep 0.1
done
if [ "$code" = 0 ] && ! grep -qE "Sanitizer|runtime error" "$T/webhook.log"; then
        ok "SIGTERM: exit 0, no sanitizer report"
else
        not_ok "SIGTERM: exit 0, no sanitizer report" "exit $code" "$(tail -20 "$T/webhook.log")"
fi
