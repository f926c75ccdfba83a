#!/usr/bin/env bash
# bench/proxy.sh [--quick]: pilotfish's sidecar against no proxy, HAProxy and nginx (issue 3).
#
# Builds two network namespaces joined by a veth pair, a client (198.18.0.1) and a pod
# (198.18.0.2). The pod holds the seed's capture rules
#   pilotfish iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020
# an nginx upstream on port 80 (a 1 KiB file, kept alive, and a large file) and an iperf3 server
# on port 5201. Every figure is taken for four paths in turn, all reached from the client at
# 198.18.0.2:80 (or :5201):
#   direct     the same rules with 80 and 5201 added to -d (so not captured): no proxy;
#   haproxy    HAProxy, TCP mode, nbthread 1, splicing, on 15006 as UID 1337, static upstream;
#   nginx      nginx's stream proxy, one worker process, on 15006 as UID 1337, static upstream;
#   pilotfish  pilotfish proxy sidecar --workers 1, as UID 1337 (original destination).
# The load generators run on one CPU, the proxy, nginx and iperf3's server on another. Each
# measurement is repeated (3 times, --quick once), the order of the paths rotating between
# repetitions, and reported as the median with its min-max spread. The last line printed is
#   RATIOS rps_c16_vs_haproxy=X added_p50_1000_vs_haproxy=X bulk_vs_direct=X cpu_per_req_vs_haproxy=X idle_rss_kib=N rss_per_conn_kib=N
# bench/README.md explains every figure. Traffic goes only to 198.18.0.2 and loopback, inside
# the two namespaces this script creates; both are deleted on exit, failure or interrupt.
#
# Environment: PILOTFISH (default build/pilotfish), BENCH_REPS, BENCH_SERVER_CPU (0),
# BENCH_LOAD_CPU (1), BENCH_KEEP=1 keeps the scratch directory (configs, logs, raw results).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

quick=0
for a in "$@"; do
        case "$a" in
        --quick) quick=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "proxy.sh: unknown argument '$a' (only --quick)" >&2; exit 2 ;;
        esac
done

if [ "$quick" = 1 ]; then
        reps=${BENCH_REPS:-1} wrk_s=3 h2_s=3 iperf_s=3
else
        reps=${BENCH_REPS:-3} wrk_s=10 h2_s=8 iperf_s=6
fi
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
pilotfish_src=${PILOTFISH:-$root/build/pilotfish}

paths=(direct haproxy nginx pilotfish)
# BENCH_PATHS="haproxy pilotfish" runs a subset (for debugging; the RATIOS need all four).
[ -n "${BENCH_PATHS:-}" ] && read -r -a paths <<<"$BENCH_PATHS"
client_ip=198.18.0.1
pod_ip=198.18.0.2
app_port=80
bulk_port=5201
capture_flags=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*')
exclude_captured=15090,15021,15020
exclude_direct=15090,15021,15020,$app_port,$bulk_port
hold_count=1000
h2_clients=10

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------
# Preconditions and packages

[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, iptables, setpriv)"
[ -x "$pilotfish_src" ] || die "no pilotfish binary at $pilotfish_src: run 'make build' first"

install_missing() {
        local p missing=()
        while read -r p; do
                p=${p%%#*}
                p=${p//[[:space:]]/}
                [ -n "$p" ] || continue
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done <"$here/packages.txt"
        [ ${#missing[@]} -eq 0 ] && return 0
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
install_missing

ncpu=$(nproc)
if [ "$server_cpu" -ge "$ncpu" ] || [ "$load_cpu" -ge "$ncpu" ] || [ "$server_cpu" = "$load_cpu" ]; then
        die "needs two distinct CPUs (BENCH_SERVER_CPU=$server_cpu BENCH_LOAD_CPU=$load_cpu, nproc=$ncpu)"
fi
stream_module=/usr/lib/nginx/modules/ngx_stream_module.so
[ -e "$stream_module" ] || die "$stream_module missing (libnginx-mod-stream)"
clk_tck=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
# Scratch directory, cleanup

tmp=$(mktemp -d /tmp/pilotfish-bench.XXXXXX)
chmod 0755 "$tmp"
ns_client="pfbench-$$-client"
ns_pod="pfbench-$$-pod"
pids=()          # every process started here, killed by id on exit
proxy_pid=""
proxy_rss_start=""
proxy_anon_start=""

cleanup() {
        local rc=$? pid ns
        set +e
        trap - EXIT INT TERM
        for pid in "${pids[@]}"; do
                kill "$pid" 2>/dev/null
        done
        sleep 0.3
        for pid in "${pids[@]}"; do
                kill -9 "$pid" 2>/dev/null
        done
        for ns in "$ns_pod" "$ns_client"; do
                if ip netns list 2>/dev/null | grep -qw "$ns"; then
                        # Whatever still runs in our own namespaces was started by this script.
                        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
                        ip netns del "$ns" 2>/dev/null
                fi
        done
        if [ "${BENCH_KEEP:-0}" = 1 ]; then
                log "kept $tmp"
        else
                rm -rf "$tmp"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy of the binary: others may rebuild build/ while this runs, and UID 1337 must read it.
mkdir -p "$tmp/bin" "$tmp/www" "$tmp/h2" "$tmp/proxy"
# The proxies run as UID 1337 and write their pid and error files here.
chown 1337:1337 "$tmp/proxy"
cp "$pilotfish_src" "$tmp/bin/pilotfish"
chmod 0755 "$tmp/bin" "$tmp/bin/pilotfish" "$tmp/www"
cc -O2 -o "$tmp/bin/holdconns" "$here/lib/holdconns.c" || die "compiling bench/lib/holdconns.c"
head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/www/1k"
truncate -s 512M "$tmp/www/big"
chmod 0644 "$tmp/www/1k" "$tmp/www/big"

# Background jobs are started through these arrays, not the functions below, so that $! is the
# program itself (ip netns exec, taskset and setpriv all exec) rather than a subshell.
run_server=(ip netns exec "$ns_pod" taskset -c "$server_cpu")
run_proxy=("${run_server[@]}" setpriv --reuid=1337 --regid=1337 --clear-groups)
run_load=(ip netns exec "$ns_client" taskset -c "$load_cpu")
in_pod() { ip netns exec "$ns_pod" "$@"; }
in_client() { ip netns exec "$ns_client" "$@"; }
on_load_cpu() { in_client taskset -c "$load_cpu" "$@"; }

# ---------------------------------------------------------------------------------------------
# The two namespaces, the capture rules, the upstreams

setup_namespaces() {
        ip netns add "$ns_client"
        ip netns add "$ns_pod"
        ip -n "$ns_client" link set lo up
        ip -n "$ns_pod" link set lo up
        ip -n "$ns_client" link add eth0 type veth peer name eth0 netns "$ns_pod"
        ip -n "$ns_client" addr add "$client_ip/24" dev eth0
        ip -n "$ns_pod" addr add "$pod_ip/24" dev eth0
        ip -n "$ns_client" link set eth0 up
        ip -n "$ns_pod" link set eth0 up
}

rules_mode=""
# set_rules captured|direct: the seed's rules, or the same with the benchmark's ports excluded.
set_rules() {
        local want=$1 exclude
        [ "$rules_mode" = "$want" ] && return 0
        if [ "$want" = direct ]; then exclude=$exclude_direct; else exclude=$exclude_captured; fi
        in_pod "$tmp/bin/pilotfish" iptables "${capture_flags[@]}" -d "$exclude" --reconcile \
                >"$tmp/iptables-$want.log" 2>&1 || { cat "$tmp/iptables-$want.log" >&2; die "pilotfish iptables ($want)"; }
        rules_mode=$want
}

# wait_listen PORT [PID]: until something listens on PORT in the pod (10 s at most), or PID exits.
wait_listen() {
        local i
        for i in $(seq 200); do
                in_pod ss -Hltn "sport = :$1" | grep -q . && return 0
                [ -z "${2:-}" ] || alive "$2" || return 1
                sleep 0.05
        done
        return 1
}

start_upstreams() {
        cat >"$tmp/app.conf" <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $tmp/app.pid;
error_log $tmp/app.err warn;
worker_rlimit_nofile $nofile;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 600s;
    keepalive_requests 100000000;
    client_header_timeout 600s;
    default_type application/octet-stream;
    server {
        listen $app_port backlog=4096;
        root $tmp/www;
        location = /whoami { default_type text/plain; return 200 "\$remote_addr\n"; }
    }
}
EOF
        "${run_server[@]}" nginx -e "$tmp/app.err" -p "$tmp/" -c "$tmp/app.conf" >"$tmp/app.out" 2>&1 &
        pids+=($!)
        "${run_server[@]}" iperf3 -s -p "$bulk_port" >"$tmp/iperf3-server.log" 2>&1 &
        pids+=($!)
        wait_listen "$app_port" || { cat "$tmp/app.out" "$tmp/app.err" >&2; die "nginx upstream did not start"; }
        wait_listen "$bulk_port" || die "iperf3 server did not start"
}

# ---------------------------------------------------------------------------------------------
# The proxies

# proxy_config PATH PORT: writes the peer proxy's configuration, forwarding 15006 to POD:PORT.
proxy_config() {
        local path=$1 port=$2
        case "$path" in
        haproxy)
                # HAProxy cannot read SO_ORIGINAL_DST: its upstream is static. Its source is
                # 127.0.0.6, which the capture rules let through, as pilotfish's is.
                cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 6000
defaults
    mode tcp
    maxconn 6000
    timeout connect 5s
    timeout client 10m
    timeout server 10m
    option splice-auto
    option tcp-smart-accept
    option tcp-smart-connect
frontend inbound
    bind :15006
    default_backend app
backend app
    server app $pod_ip:$port source 127.0.0.6
EOF
                ;;
        nginx)
                cat >"$tmp/nginx-proxy.conf" <<EOF
load_module $stream_module;
worker_processes 1;
master_process off;
daemon off;
pid $tmp/proxy/nginx.pid;
error_log $tmp/proxy/nginx.err warn;
worker_rlimit_nofile $nofile;
events { worker_connections 16384; }
stream {
    server {
        listen 15006 backlog=4096;
        proxy_pass $pod_ip:$port;
        proxy_bind 127.0.0.6;
        proxy_connect_timeout 5s;
        proxy_timeout 10m;
    }
}
EOF
                ;;
        esac
}

# start_proxy PATH PORT: starts the path's proxy (none for direct), sets proxy_pid.
start_proxy() {
        local path=$1 port=$2
        proxy_pid=""
        # HAProxy and pilotfish listen with SO_REUSEPORT: a leftover would silently take a share.
        if in_pod ss -Hltn "sport = :15006" | grep -q .; then
                die "something still listens on 15006 before starting $path"
        fi
        case "$path" in
        direct) return 0 ;;
        haproxy)
                proxy_config haproxy "$port"
                "${run_proxy[@]}" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
                ;;
        nginx)
                proxy_config nginx "$port"
                "${run_proxy[@]}" nginx -e "$tmp/proxy/nginx.err" -p "$tmp/proxy/" -c "$tmp/nginx-proxy.conf" >"$tmp/nginx-proxy.log" 2>&1 &
                ;;
        pilotfish)
                "${run_proxy[@]}" "$tmp/bin/pilotfish" proxy sidecar --workers 1 --log-level warn >"$tmp/pilotfish.log" 2>&1 &
                ;;
        esac
        proxy_pid=$!
        pids+=("$proxy_pid")
        if ! wait_listen 15006 "$proxy_pid"; then
                cat "$tmp/$path"*.log >&2 2>/dev/null || true
                die "$path did not start listening on 15006"
        fi
        if [ "$path" = pilotfish ]; then
                local i
                for i in $(seq 100); do
                        in_pod curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && break
                        sleep 0.05
                done
        fi
        # ip netns exec, taskset and setpriv all exec: $! is the proxy itself.
        local comm
        comm=$(cat "/proc/$proxy_pid/comm" 2>/dev/null) || die "$path exited at start"
        case "$path:$comm" in
        haproxy:haproxy | nginx:nginx | pilotfish:pilotfish) ;;
        *) die "$path: process $proxy_pid is '$comm', not the proxy" ;;
        esac
        sleep 0.5
        proxy_rss_start=$(rss_kib "$proxy_pid")
        proxy_anon_start=$(awk '/^RssAnon:/ { print $2 }' "/proc/$proxy_pid/status")
}

# alive PID: the process exists and is not a zombie waiting to be reaped.
alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'; }

stop_proxy() {
        local i
        [ -n "$proxy_pid" ] || return 0
        # pilotfish exits at once on SIGINT (SIGTERM drains); HAProxy and nginx stop at once on
        # SIGTERM (and a background job of a script starts with SIGINT ignored, which HAProxy keeps).
        if [ "$(cat "/proc/$proxy_pid/comm" 2>/dev/null)" = pilotfish ]; then
                kill -INT "$proxy_pid" 2>/dev/null || true
        else
                kill -TERM "$proxy_pid" 2>/dev/null || true
        fi
        for i in $(seq 50); do
                alive "$proxy_pid" || break
                sleep 0.1
        done
        if alive "$proxy_pid"; then
                log "warning: the proxy (pid $proxy_pid) did not stop in 5 s; killing it"
                kill -9 "$proxy_pid" 2>/dev/null || true
        fi
        wait "$proxy_pid" 2>/dev/null || true
        proxy_pid=""
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# utime + stime of every thread, in clock ticks (fields 14 and 15; the name may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# ---------------------------------------------------------------------------------------------
# Measurements. Results are appended to res[PATH.METRIC] as space-separated values.

declare -A res
add() { res[$1.$2]="${res[$1.$2]:-}${res[$1.$2]:+ }$3"; }

check_path() {
        local path=$1 want got
        if [ "$path" = direct ]; then want=$client_ip; else want=127.0.0.6; fi
        got=$(in_client curl -s --max-time 5 "http://$pod_ip:$app_port/whoami") || die "$path: no answer through the path"
        [ "$got" = "$want" ] || die "$path: upstream saw the client as '$got', expected $want"
        got=$(in_client curl -s --max-time 5 "http://$pod_ip:$app_port/1k" | wc -c)
        [ "$got" = 1024 ] || die "$path: /1k returned $got bytes"
}

measure_memory() {
        local path=$1 before held i
        before=$(rss_kib "$proxy_pid")
        "${run_load[@]}" "$tmp/bin/holdconns" "$pod_ip" "$app_port" "$hold_count" 60 >"$tmp/hold.out" 2>"$tmp/hold.err" &
        local hpid=$!
        pids+=("$hpid")
        for i in $(seq 300); do
                grep -q '^held' "$tmp/hold.out" 2>/dev/null && break
                kill -0 "$hpid" 2>/dev/null || { cat "$tmp/hold.err" >&2; die "$path: holding $hold_count connections failed"; }
                sleep 0.1
        done
        grep -q '^held' "$tmp/hold.out" || die "$path: holding $hold_count connections timed out"
        # Let the proxy accept and connect upstream for the last ones.
        sleep 1
        held=$(in_pod ss -Htn state established "( sport = :$app_port )" | grep -c '127.0.0.6' || true)
        [ "$held" -ge "$hold_count" ] || log "warning: $path: only $held of $hold_count upstream connections established"
        add "$path" rss_1000 "$(rss_kib "$proxy_pid")"
        add "$path" rss_per_conn "$(awk -v a="$before" -v b="$(rss_kib "$proxy_pid")" -v n="$hold_count" \
                'BEGIN { printf "%.2f", (b - a) / n }')"
        kill "$hpid" 2>/dev/null || true
        wait "$hpid" 2>/dev/null || true
        sleep 0.5
}

# run_wrk PATH CONNS: requests per second, and the proxy's CPU per 1,000 requests.
run_wrk() {
        local path=$1 c=$2 out t0 t1 rps n
        [ -n "$proxy_pid" ] && t0=$(cpu_ticks "$proxy_pid")
        out=$(on_load_cpu wrk -t1 -c"$c" -d"${wrk_s}s" "http://$pod_ip:$app_port/1k" 2>&1) || die "$path: wrk failed: $out"
        [ -n "$proxy_pid" ] && t1=$(cpu_ticks "$proxy_pid")
        if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
                log "warning: $path c$c: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ')"
        fi
        rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
        n=$(awk '/requests in/ { print $1 }' <<<"$out")
        [ -n "$rps" ] && [ -n "$n" ] && [ "$n" -gt 0 ] || die "$path: cannot read wrk's output: $out"
        add "$path" "rps_c$c" "$rps"
        if [ -n "$proxy_pid" ]; then
                # CPU milliseconds per 1,000 requests (= microseconds per request).
                add "$path" "cpu_c$c" "$(awk -v d=$((t1 - t0)) -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')"
        fi
}

# run_h2load PATH RATE: latency percentiles (microseconds) at a fixed request rate.
run_h2load() {
        local path=$1 rate=$2 f="$tmp/h2/$1-$2.log" out p
        rm -f "$f"
        out=$(on_load_cpu h2load --h1 --rps=$((rate / h2_clients)) -c "$h2_clients" -t 1 -D "$h2_s" \
                --warm-up-time=1 --log-file="$f" "http://$pod_ip:$app_port/1k" 2>&1) || die "$path: h2load failed: $out"
        grep -q ' 0 failed' <<<"$out" || log "warning: $path ${rate}rps: $(grep '^requests:' <<<"$out")"
        p=$(awk -F'\t' '$2 == 200 { print $3 }' "$f" | sort -n | awk '
                { v[NR] = $1 }
                function q(p,  i) { i = int(p * NR + 0.999999); if (i < 1) i = 1; return v[i] }
                END { if (NR == 0) exit 1; printf "%d %d %d %d", q(0.50), q(0.90), q(0.99), NR }') ||
                die "$path: no successful request in h2load's log"
        set -- $p
        add "$path" "p50_$rate" "$1"
        add "$path" "p90_$rate" "$2"
        add "$path" "p99_$rate" "$3"
        add "$path" "n_$rate" "$4"
}

# HTTP download of the 512 MiB file, Gbit/s (informational; iperf3 is the bulk figure).
run_download() {
        local path=$1 bps
        bps=$(on_load_cpu curl -s -o /dev/null --max-time 60 -w '%{speed_download}' "http://$pod_ip:$app_port/big") ||
                die "$path: download failed"
        add "$path" bulk_http "$(awk -v b="$bps" 'BEGIN { printf "%.2f", b * 8 / 1e9 }')"
}

# iperf3, one stream, client to pod, Gbit/s received.
run_iperf() {
        local path=$1 out bps
        out=$(on_load_cpu iperf3 -c "$pod_ip" -p "$bulk_port" -t "$iperf_s" -O 1 -J 2>&1) || die "$path: iperf3 failed: $out"
        bps=$(awk '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { gsub(/,/, ""); print $2; exit }' <<<"$out")
        [ -n "$bps" ] || die "$path: cannot read iperf3's output: $(grep -m1 error <<<"$out")"
        add "$path" bulk "$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e9 }')"
}

# One path, one repetition: every measurement.
run_path() {
        local path=$1
        if [ "$path" = direct ]; then set_rules direct; else set_rules captured; fi
        start_proxy "$path" "$app_port"
        # Idle RSS: read by start_proxy, before the first proxied connection.
        if [ -n "$proxy_pid" ]; then
                add "$path" rss_idle "$proxy_rss_start"
                add "$path" anon_idle "$proxy_anon_start"
        fi
        check_path "$path"
        [ -n "$proxy_pid" ] && measure_memory "$path"
        for c in 1 16 64; do
                run_wrk "$path" "$c"
        done
        run_h2load "$path" 1000
        run_h2load "$path" 5000
        run_download "$path"
        # HAProxy and nginx forward to a fixed address: restart them toward iperf3's port.
        case "$path" in
        haproxy | nginx)
                stop_proxy
                start_proxy "$path" "$bulk_port"
                ;;
        esac
        run_iperf "$path"
        stop_proxy
}

# ---------------------------------------------------------------------------------------------
# Statistics and the report

# stats PATH METRIC: "median min max" of the repetitions (empty when not measured).
stats() {
        local v=${res[$1.$2]:-}
        [ -n "$v" ] || return 0
        tr ' ' '\n' <<<"$v" | sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
med() { local s; s=$(stats "$1" "$2"); echo "${s%% *}"; }

# cell PATH METRIC: "median [min-max]", the spread left out when there is one repetition.
cell() {
        local s
        s=$(stats "$1" "$2")
        if [ -z "$s" ]; then
                echo "-"
                return
        fi
        set -- $s
        if [ "$reps" -gt 1 ]; then echo "$1 [$2-$3]"; else echo "$1"; fi
}

print_table() {
        local row m label p
        printf '\n%-34s' "figure (median [min-max] of $reps)"
        for p in "${paths[@]}"; do printf ' %-22s' "$p"; done
        printf '\n'
        for row in \
                "rps_c1|req/s, wrk 1 conn" \
                "rps_c16|req/s, wrk 16 conns" \
                "rps_c64|req/s, wrk 64 conns" \
                "p50_1000|p50 us @ 1000 req/s" \
                "p90_1000|p90 us @ 1000 req/s" \
                "p99_1000|p99 us @ 1000 req/s" \
                "added_p50_1000|added p50 us @ 1000 (vs direct)" \
                "p50_5000|p50 us @ 5000 req/s" \
                "p90_5000|p90 us @ 5000 req/s" \
                "p99_5000|p99 us @ 5000 req/s" \
                "added_p50_5000|added p50 us @ 5000 (vs direct)" \
                "bulk|bulk Gbit/s, iperf3 1 stream" \
                "bulk_http|bulk Gbit/s, 512 MiB HTTP GET" \
                "cpu_c1|proxy CPU ms/1k req, 1 conn" \
                "cpu_c16|proxy CPU ms/1k req, 16 conns" \
                "cpu_c64|proxy CPU ms/1k req, 64 conns" \
                "rss_idle|proxy RSS KiB, idle" \
                "anon_idle|  of which anonymous (RssAnon)" \
                "rss_1000|proxy RSS KiB, $hold_count idle conns" \
                "rss_per_conn|proxy KiB per idle conn"; do
                m=${row%%|*}
                label=${row#*|}
                printf '%-34s' "$label"
                for p in "${paths[@]}"; do
                        case "$m" in
                        added_p50_*)
                                local r=${m#added_p50_} a b
                                a=$(med "$p" "p50_$r")
                                b=$(med direct "p50_$r")
                                if [ "$p" = direct ] || [ -z "$a" ] || [ -z "$b" ]; then
                                        printf ' %-22s' "-"
                                else
                                        printf ' %-22s' "$((a - b))"
                                fi
                                ;;
                        *) printf ' %-22s' "$(cell "$p" "$m")" ;;
                        esac
                done
                printf '\n'
        done
        printf '\n'
}

# ratio A B: A/B with two decimals, "nan" when B is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 <= 0 || a == "") print "nan"; else printf "%.2f", a / b }'; }

print_ratios() {
        local d h f added_f="" added_h=""
        d=$(med direct p50_1000)
        h=$(med haproxy p50_1000)
        f=$(med pilotfish p50_1000)
        if [ -n "$d" ] && [ -n "$h" ] && [ -n "$f" ]; then
                added_f=$((f - d))
                added_h=$((h - d))
        fi
        printf 'RATIOS rps_c16_vs_haproxy=%s added_p50_1000_vs_haproxy=%s bulk_vs_direct=%s cpu_per_req_vs_haproxy=%s idle_rss_kib=%s rss_per_conn_kib=%s\n' \
                "$(ratio "$(med pilotfish rps_c16)" "$(med haproxy rps_c16)")" \
                "$(ratio "$added_f" "$added_h")" \
                "$(ratio "$(med pilotfish bulk)" "$(med direct bulk)")" \
                "$(ratio "$(med pilotfish cpu_c16)" "$(med haproxy cpu_c16)")" \
                "$(v=$(med pilotfish rss_idle); echo "${v:-nan}")" \
                "$(awk -v v="$(med pilotfish rss_per_conn)" 'BEGIN { if (v == "") print "nan"; else { n = int(v); print (v > n ? n + 1 : n) } }')"
}

# ---------------------------------------------------------------------------------------------
# Main

# Room for the held connections (two fds each in a proxy) whatever the container allows.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
ulimit -n "$nofile"
[ "$nofile" -ge $((hold_count * 2 + 1000)) ] || die "the open-files limit ($nofile) is too low for $hold_count connections"
log "$("$tmp/bin/pilotfish" --version 2>&1 | head -n1); $reps repetition(s); wrk ${wrk_s}s, h2load ${h2_s}s, iperf3 ${iperf_s}s; load on CPU $load_cpu, servers on CPU $server_cpu"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
setup_namespaces
set_rules captured
start_upstreams
log "namespaces $ns_client ($client_ip) and $ns_pod ($pod_ip) ready"

for ((rep = 0; rep < reps; rep++)); do
        for ((i = 0; i < ${#paths[@]}; i++)); do
                path=${paths[$(((i + rep) % ${#paths[@]}))]}
                log "repetition $((rep + 1))/$reps: $path"
                run_path "$path"
                log "  $path: rps c1/c16/c64 $(awk '{print $NF}' <<<"${res[$path.rps_c1]}")/$(awk '{print $NF}' <<<"${res[$path.rps_c16]}")/$(awk '{print $NF}' <<<"${res[$path.rps_c64]}"), p50@1000 $(awk '{print $NF}' <<<"${res[$path.p50_1000]}") us, bulk $(awk '{print $NF}' <<<"${res[$path.bulk]}") Gbit/s${res[$path.cpu_c16]:+, cpu c16 $(awk '{print $NF}' <<<"${res[$path.cpu_c16]}") ms/1k}${res[$path.rss_idle]:+, rss idle $(awk '{print $NF}' <<<"${res[$path.rss_idle]}") KiB}"
        done
done

if [ "${BENCH_KEEP:-0}" = 1 ]; then
        for k in "${!res[@]}"; do echo "$k ${res[$k]}"; done | sort >"$tmp/raw.txt"
fi
echo "pilotfish bench/proxy.sh$([ "$quick" = 1 ] && echo ' --quick'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r)"
echo "binary $pilotfish_src ($("$tmp/bin/pilotfish" --version 2>&1 | head -n1), built $(date -u -r "$pilotfish_src" '+%Y-%m-%d %H:%M UTC')), tree $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
echo "took $(( $(date +%s) - started )) s; load average (1/5/15 min) at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk ${wrk_s}s per run; h2load ${h2_s}s (+1s warm-up), $h2_clients conns, 1 req in flight each; iperf3 ${iperf_s}s (+1s omitted), 1 stream"
print_table
print_ratios
