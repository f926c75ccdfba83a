#!/usr/bin/env bash
# bench/webhook.sh: how fast `pilotfish webhook` injects (issue 5). Not a test.
#
#   sudo bench/webhook.sh            3 repetitions, about 2 minutes
#   BENCH_REPS=1 bench/webhook.sh    a quick look
#
# In a network namespace of its own (loopback only), the webhook runs as UID 1337 pinned to CPU
# 0 with a certificate from `pilotfish certs`; h2load (--h1, HTTPS, keep-alive) runs on CPU 1 and
# POSTs the admission corpus's Deployment pod (v1-pod-create-from-replicaset.json: probes,
# Prometheus annotations, managedFields) to /inject:
#   - injections per second with 64 connections, 8 s, every one computed (--answer-cache 0);
#   - latency percentiles at a fixed 1,000 requests per second (10 connections, 100 each,
#     h2load's per-request log, nearest rank), computed;
#   - the same 64-connection rate for a request the webhook skips (a host-network pod), which
#     is what TLS, HTTP and parsing alone cost;
#   - beside them, the same injections from a webhook with its answer cache on (the default):
#     h2load sends one body, so every request after the first is the same pod with the same
#     uid, as a burst of one Deployment's pods is but for the uid. That is what a scale-up
#     costs; the computed figures are what an injection costs, and the RATIOS line uses them.
# Prints a table, then last:
#   RATIOS inject_rps=N p99_ms_1000=X inject_vs_skip_rps=X
# (inject_vs_skip_rps is the injection rate over the skip rate: 0.5 means an injection costs
# twice a skip). Environment: PILOTFISH (default build/pilotfish; pilotfish-webhook must be
# beside it), BENCH_REPS (3), BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
pf=${PILOTFISH:-$root/build/pilotfish}
reps=${BENCH_REPS:-3}
scpu=${BENCH_SERVER_CPU:-0}
lcpu=${BENCH_LOAD_CPU:-1}
corpus=$root/tests/data/istio-inject/admission
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a network namespace, setpriv)"
for t in h2load taskset setpriv awk jq; do command -v $t >/dev/null || die "$t not found (apt-get install nghttp2-client util-linux gawk jq)"; done
[ -x "$pf" ] && [ -x "$(dirname "$pf")/pilotfish-webhook" ] || die "build first: make build ($pf and pilotfish-webhook)"

ns=pfbench-wh-$$
tmp=$(mktemp -d /tmp/pilotfish-bench-wh.XXXXXX)
pid=
cleanup() {
        [ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 0755 "$tmp"
cp "$pf" "$(dirname "$pf")/pilotfish-webhook" "$tmp/"
"$tmp/pilotfish" certs --out "$tmp/certs" >/dev/null
chmod 0755 "$tmp/certs"
chmod 0644 "$tmp/certs/"*
ip netns add "$ns"
ip -n "$ns" link set lo up
cp "$corpus/v1-pod-create-from-replicaset.json" "$tmp/inject.json"
cp "$corpus/v1-pod-create-hostnetwork-daemonset.json" "$tmp/skip.json"

# Two webhooks on the same CPU, one busy at a time: 15017 as shipped (answer cache on), 15018
# computing every answer.
pids=()
for port in 15017 15018; do
        cache=256
        [ "$port" = 15018 ] && cache=0
        ip netns exec "$ns" taskset -c "$scpu" setpriv --reuid=1337 --regid=1337 --clear-groups "$tmp/pilotfish-webhook" \
                webhook --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" --log-level warn --port "$port" \
                --answer-cache "$cache" >"$tmp/webhook-$port.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 50); do
                ip netns exec "$ns" curl -sk -o /dev/null "https://127.0.0.1:$port/healthz" && break
                sleep 0.1
        done
done
pid=${pids[*]}
load() { ip netns exec "$ns" taskset -c "$lcpu" h2load --h1 -H 'Content-Type: application/json' "$@" 2>&1; }

declare -A r
add() { r[$1]="${r[$1]:-}${r[$1]:+ }$2"; }
med() { tr ' ' '\n' <<<"${r[$1]}" | sort -g | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%s [%s-%s]", m, v[1], v[NR] }'; }
medv() { tr ' ' '\n' <<<"${r[$1]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

started=$(date +%s)
# rate NAME PORT BODY: one 64-connection run.
rate() {
        local out rps ok
        out=$(load -c 64 -t 1 -D 8 --warm-up-time=1 -d "$tmp/$3.json" "https://127.0.0.1:$2/inject")
        rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) print $(i - 1) }' <<<"$out" | tr -d ',')
        ok=$(awk '/^status codes:/ { print $3 }' <<<"$out")
        [ -n "$rps" ] || die "h2load said: $out"
        add "$1.rps" "$rps"
        log "repetition $i: $1 at 64 connections: $rps req/s ($ok 2xx)"
}
# latency NAME PORT: percentiles at 1,000 injections/s.
latency() {
        local p50 p90 p99
        rm -f "$tmp/lat.log"
        load -c 10 -t 1 --rps 100 -D 8 --warm-up-time=1 -d "$tmp/inject.json" --log-file="$tmp/lat.log" \
                "https://127.0.0.1:$2/inject" >/dev/null
        read -r p50 p90 p99 < <(awk '$2 == 200 { print $3 }' "$tmp/lat.log" | sort -n |
                awk '{ v[NR] = $1 } END { printf "%.3f %.3f %.3f\n", v[int(NR * 0.5 + 0.5)] / 1000, v[int(NR * 0.9 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000 }')
        add "$1.p50" "$p50"
        add "$1.p90" "$p90"
        add "$1.p99" "$p99"
        log "repetition $i: $1 at 1,000 req/s p50 $p50 ms, p90 $p90 ms, p99 $p99 ms"
}
for i in $(seq "$reps"); do
        rate inject 15018 inject
        rate skip 15018 skip
        rate burst 15017 inject
        latency inject 15018
        latency burst 15017
done
hits=$(ip netns exec "$ns" curl -sk https://127.0.0.1:15017/metrics | awk '$1 == "pilotfish_webhook_answer_cache_hits_total" { print $2 }')
computed=$(ip netns exec "$ns" curl -sk https://127.0.0.1:15018/metrics | awk '$1 == "pilotfish_webhook_answer_cache_hits_total" { print $2 }')
[ "$computed" = 0 ] || die "the webhook with --answer-cache 0 answered $computed requests from a cache"
kill -TERM $pid
for p in $pid; do
        wait "$p" || die "a webhook did not exit 0: $(tail -5 "$tmp"/webhook-*.log)"
done
pid=

echo "pilotfish bench/webhook.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), took $(($(date +%s) - started)) s"
echo "binary $pf ($("$pf" --version)); webhook on CPU $scpu as UID 1337, h2load --h1 on CPU $lcpu; HTTPS keep-alive"
echo
printf '%-52s %s\n' "figure (median [min-max] of $reps)" "value"
printf '%-52s %s\n' "injections/s, 64 connections, computed" "$(med inject.rps)"
printf '%-52s %s\n' "skips/s (host-network pod), 64 connections" "$(med skip.rps)"
printf '%-52s %s\n' "p50 ms at 1,000 injections/s, computed" "$(med inject.p50)"
printf '%-52s %s\n' "p90 ms at 1,000 injections/s, computed" "$(med inject.p90)"
printf '%-52s %s\n' "p99 ms at 1,000 injections/s, computed" "$(med inject.p99)"
printf '%-52s %s\n' "injections/s, 64 connections, burst (answer cache)" "$(med burst.rps)"
printf '%-52s %s\n' "p99 ms at 1,000 injections/s, burst (answer cache)" "$(med burst.p99)"
printf '%-52s %s\n' "answers from the cache (all repetitions)" "$hits"
echo
awk -v i="$(medv inject.rps)" -v s="$(medv skip.rps)" -v p="$(medv inject.p99)" \
        'BEGIN { printf "RATIOS inject_rps=%d p99_ms_1000=%.2f inject_vs_skip_rps=%.2f\n", i, p, i / s }'
