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
#   - injections per second with 64 connections, 8 s;
#   - latency percentiles at a fixed 1,000 requests per second (10 connections, 100 each,
#     h2load's per-request log, nearest rank);
#   - the same 64-connection rate for a request the webhook skips (a host-network pod), which
#     is what TLS, HTTP and parsing alone cost.
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
corpus=$root/../shared/conformance/istio-inject/admission
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a network namespace, setpriv)"
for t in h2load taskset setpriv awk jq; do command -v $t >/dev/null || die "$t not found (apt-get install nghttp2-client util-linux gawk jq)"; done
[ -x "$pf" ] && [ -x "$(dirname "$pf")/pilotfish-webhook" ] || die "build first: make build ($pf and pilotfish-webhook)"

ns=pfbench-wh-$$
tmp=$(mktemp -d /tmp/pilotfish-bench-wh.XXXXXX)
pid=
cleanup() {
        [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
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

ip netns exec "$ns" taskset -c "$scpu" setpriv --reuid=1337 --regid=1337 --clear-groups "$tmp/pilotfish-webhook" \
        webhook --tls-cert "$tmp/certs/tls.crt" --tls-key "$tmp/certs/tls.key" --log-level warn >"$tmp/webhook.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
        ip netns exec "$ns" curl -sk -o /dev/null https://127.0.0.1:15017/healthz && break
        sleep 0.1
done
load() { ip netns exec "$ns" taskset -c "$lcpu" h2load --h1 -H 'Content-Type: application/json' "$@" 2>&1; }

declare -A r
add() { r[$1]="${r[$1]:-}${r[$1]:+ }$2"; }
med() { tr ' ' '\n' <<<"${r[$1]}" | sort -g | awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; printf "%s [%s-%s]", m, v[1], v[NR] }'; }
medv() { tr ' ' '\n' <<<"${r[$1]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

started=$(date +%s)
for i in $(seq "$reps"); do
        for kind in inject skip; do
                out=$(load -c 64 -t 1 -D 8 --warm-up-time=1 -d "$tmp/$kind.json" https://127.0.0.1:15017/inject)
                rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($i ~ /req\/s/) print $(i - 1) }' <<<"$out" | tr -d ',')
                ok=$(awk '/^status codes:/ { print $3 }' <<<"$out")
                [ -n "$rps" ] || die "h2load said: $out"
                add "$kind.rps" "$rps"
                log "repetition $i: $kind at 64 connections: $rps req/s ($ok 2xx)"
        done
        rm -f "$tmp/lat.log"
        load -c 10 -t 1 --rps 100 -D 8 --warm-up-time=1 -d "$tmp/inject.json" --log-file="$tmp/lat.log" \
                https://127.0.0.1:15017/inject >/dev/null
        read -r p50 p90 p99 < <(awk '$2 == 200 { print $3 }' "$tmp/lat.log" | sort -n |
                awk '{ v[NR] = $1 } END { printf "%.3f %.3f %.3f\n", v[int(NR * 0.5 + 0.5)] / 1000, v[int(NR * 0.9 + 0.5)] / 1000, v[int(NR * 0.99 + 0.5)] / 1000 }')
        add p50 "$p50"
        add p90 "$p90"
        add p99 "$p99"
        log "repetition $i: at 1,000 req/s p50 $p50 ms, p90 $p90 ms, p99 $p99 ms"
done
kill -TERM "$pid"
wait "$pid" || die "the webhook did not exit 0: $(tail -5 "$tmp/webhook.log")"
pid=

echo "pilotfish bench/webhook.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), took $(($(date +%s) - started)) s"
echo "binary $pf ($("$pf" --version)); webhook on CPU $scpu as UID 1337, h2load --h1 on CPU $lcpu; HTTPS keep-alive"
echo
printf '%-44s %s\n' "figure (median [min-max] of $reps)" "value"
printf '%-44s %s\n' "injections/s, 64 connections" "$(med inject.rps)"
printf '%-44s %s\n' "skips/s (host-network pod), 64 connections" "$(med skip.rps)"
printf '%-44s %s\n' "p50 ms at 1,000 injections/s" "$(med p50)"
printf '%-44s %s\n' "p90 ms at 1,000 injections/s" "$(med p90)"
printf '%-44s %s\n' "p99 ms at 1,000 injections/s" "$(med p99)"
echo
awk -v i="$(medv inject.rps)" -v s="$(medv skip.rps)" -v p="$(medv p99)" \
        'BEGIN { printf "RATIOS inject_rps=%d p99_ms_1000=%.2f inject_vs_skip_rps=%.2f\n", i, p, i / s }'
