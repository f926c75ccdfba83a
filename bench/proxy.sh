#!/usr/bin/env bash
# bench/proxy.sh [--quick]: pilotfish's sidecar against no proxy, HAProxy and nginx, as paired
# ratios (issues 3 and 11).
#
# Builds two network namespaces joined by a veth pair, a client (198.18.0.1) and a pod
# (198.18.0.2). The pod holds the seed's capture rules
#   pilotfish iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020
# an nginx upstream on port 80 (a 1 KiB file, kept alive, and a large file) and an iperf3 server
# on port 5201. Every figure is taken for each path, all reached from the client at
# 198.18.0.2:80 (or :5201):
#   direct            the same rules with 80 and 5201 added to -d (so not captured): no proxy;
#   haproxy           HAProxy, TCP mode, nbthread 1, splicing, on 15006 as UID 1337, static upstream;
#   nginx             nginx's stream proxy, one worker process, on 15006 as UID 1337, static upstream;
#   pilotfish         pilotfish proxy sidecar --workers 1, as UID 1337 (original destination);
#   pilotfish-before  the same with the binary PILOTFISH_BEFORE names (only when it is set).
# The load generators run on one CPU, the proxy, nginx and iperf3's server on another.
#
# Paired method: a repetition takes each measurement (memory, wrk at 1/16/64 connections, h2load
# at 1,000 and 5,000 req/s, the download, iperf3) for every path back to back, in an order that
# rotates from one repetition to the next, and every ratio (pilotfish over HAProxy, new over
# before, ...) is computed within the repetition. The report gives each ratio's median, min-max
# and interquartile range over the repetitions (5 by default, --quick 1), the raw figures of
# every repetition, and, per wrk run, what tells the machine's noise from the proxy's own cost
# (steal, iowait, idle, other processes' CPU, the proxy's context switches and counters). The
# last line printed is
#   RATIOS reps=N rps_c16_vs_haproxy=MED[MIN..MAX] cpu_per_req_vs_haproxy=MED[MIN..MAX] ...
# bench/README.md explains every figure. Traffic goes only to 198.18.0.2 and loopback, inside
# the two namespaces this script creates; both are deleted on exit, failure or interrupt.
#
# Environment: PILOTFISH (default build/pilotfish), PILOTFISH_BEFORE (a second pilotfish binary,
# measured as the path pilotfish-before), BENCH_REPS, BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1),
# BENCH_KEEP=1 keeps the scratch directory (configs, logs, raw.txt, diag.txt, report.txt),
# BENCH_PATHS (a subset of the paths, for debugging).
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
        reps=${BENCH_REPS:-5} wrk_s=10 h2_s=8 iperf_s=6
fi
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
pilotfish_src=${PILOTFISH:-$root/build/pilotfish}
before_src=${PILOTFISH_BEFORE:-}

paths=(direct haproxy nginx pilotfish)
[ -n "$before_src" ] && paths+=(pilotfish-before)
# BENCH_PATHS="haproxy pilotfish" runs a subset (for debugging; a ratio needs both its paths).
[ -n "${BENCH_PATHS:-}" ] && read -r -a paths <<<"$BENCH_PATHS"
# The measurements of one repetition, each taken for every path before the next one starts.
steps=(memory wrk1 wrk16 wrk64 h2_1000 h2_5000 download iperf)
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
[ -z "$before_src" ] || [ -x "$before_src" ] || die "PILOTFISH_BEFORE: no executable at $before_src"

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
app_pid=""       # the upstream nginx
iperf_pid=""     # the upstream iperf3 -s
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
if [ -n "$before_src" ]; then
        # Its own directory, so that its process is named pilotfish too.
        mkdir -p "$tmp/before"
        cp "$before_src" "$tmp/before/pilotfish"
        chmod 0755 "$tmp/before" "$tmp/before/pilotfish"
fi
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
        app_pid=$!
        pids+=($!)
        "${run_server[@]}" iperf3 -s -p "$bulk_port" >"$tmp/iperf3-server.log" 2>&1 &
        iperf_pid=$!
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
        pilotfish-before)
                "${run_proxy[@]}" "$tmp/before/pilotfish" proxy sidecar --workers 1 --log-level warn >"$tmp/pilotfish-before.log" 2>&1 &
                ;;
        esac
        proxy_pid=$!
        pids+=("$proxy_pid")
        if ! wait_listen 15006 "$proxy_pid"; then
                cat "$tmp/$path"*.log >&2 2>/dev/null || true
                die "$path did not start listening on 15006"
        fi
        if [ "${path%-before}" = pilotfish ]; then
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
        haproxy:haproxy | nginx:nginx | pilotfish:pilotfish | pilotfish-before:pilotfish) ;;
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
        # The previous path's "held" must not be read before this run truncates the file.
        rm -f "$tmp/hold.out" "$tmp/hold.err"
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

# ---------------------------------------------------------------------------------------------
# Machine or proxy: what each wrk run records besides its result (issue 11)
#
# Around every wrk run: the two CPUs' /proc/stat lines (idle, iowait, softirq, steal), the load
# average, every process's CPU from /proc/*/stat (utime, stime and its reaped children's, and
# the CPU it last ran on), the upstreams' and the load generator's own CPU, the proxy's context
# switches (all threads, /proc/PID/task/*/status) and the CPUs its threads ran on, and for
# pilotfish its byte counters from 15090 (spliced or copied). What is not ours is "others":
# the CPU's busy time (user + nice + system + irq + softirq) minus our processes' on that CPU
# (tick-sampled, so a few percent either way).

# cpu_line N: "user nice system idle iowait irq softirq steal" of CPU N, in ticks.
cpu_line() { awk -v c="cpu$1" '$1 == c { print $2, $3, $4, $5, $6, $7, $8, $9; exit }' /proc/stat; }

# ps_snapshot: "pid ticks cpu comm" for every process (ticks: utime+stime+cutime+cstime).
ps_snapshot() {
        { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '{
                o = index($0, "("); match($0, /.*\) /); c = substr($0, o + 1, RLENGTH - o - 2)
                gsub(/[[:space:]]/, "_", c); n = split(substr($0, RLENGTH + 1), f, " ")
                if (n >= 37) print $1, f[12] + f[13] + f[14] + f[15], f[37], c }'
}

# ctx_switches PID: "voluntary nonvoluntary", summed over the process's threads.
ctx_switches() {
        { cat /proc/"$1"/task/*/status 2>/dev/null || true; } | awk '/^voluntary_ctxt_switches:/ { v += $2 }
                /^nonvoluntary_ctxt_switches:/ { n += $2 } END { print v + 0, n + 0 }'
}

# task_cpus PID: the CPUs the process's threads last ran on, e.g. "0" or "0,1".
task_cpus() {
        { cat /proc/"$1"/task/*/stat 2>/dev/null || true; } | sed 's/.*) //' | awk '{ print $37 }' | sort -un | paste -sd, -
}

# pf_bytes: "spliced copied" from pilotfish's metrics ("nan nan" when it has none).
pf_bytes() {
        { in_pod curl -s --max-time 2 http://127.0.0.1:15090/stats/prometheus 2>/dev/null || true; } | awk '
                $1 == "pilotfish_bytes_spliced_total" { s = $2 } $1 == "pilotfish_bytes_copied_total" { c = $2 }
                END { print (s == "" ? "nan" : s), (c == "" ? "nan" : c) }'
}

d_srv0="" d_load0="" d_ps0="" d_load1="" d_ctx0="" d_app0="" d_iperf0="" d_bytes0=""
diag_begin() {
        d_bytes0="nan nan"
        [ "${1%-before}" = pilotfish ] && d_bytes0=$(pf_bytes)
        d_load1=$(cut -d' ' -f1 /proc/loadavg)
        d_ps0=$(ps_snapshot)
        d_app0=$(cpu_ticks "$app_pid")
        d_iperf0=$(cpu_ticks "$iperf_pid")
        d_ctx0="0 0"
        [ -n "$proxy_pid" ] && d_ctx0=$(ctx_switches "$proxy_pid")
        d_srv0=$(cpu_line "$server_cpu")
        d_load0=$(cpu_line "$load_cpu")
}

# diag_end PATH CONNS REQUESTS PROXY_TICKS WRK_TICKS: records the figures above as metrics
# (res[PATH.x_cCONNS]) and one line of diag.txt.
diag_end() {
        local path=$1 c=$2 n=$3 pticks=${4:-0} wticks=$5 srv1 load1 ps1 ctx1 app1 iperf1 bytes1 cpus excl
        srv1=$(cpu_line "$server_cpu")
        load1=$(cpu_line "$load_cpu")
        ps1=$(ps_snapshot)
        app1=$(cpu_ticks "$app_pid")
        iperf1=$(cpu_ticks "$iperf_pid")
        ctx1="0 0" cpus="-"
        if [ -n "$proxy_pid" ]; then
                ctx1=$(ctx_switches "$proxy_pid")
                cpus=$(task_cpus "$proxy_pid")
        fi
        bytes1="nan nan"
        [ "${path%-before}" = pilotfish ] && bytes1=$(pf_bytes)
        # Ours: this script (whose children's times include wrk's once reaped) and everything in
        # the two namespaces.
        excl=$( { echo $$; ip netns pids "$ns_pod" || true; ip netns pids "$ns_client" || true; } 2>/dev/null | paste -sd' ' -)
        local line
        line=$(awk -v srv0="$d_srv0" -v srv1="$srv1" -v ld0="$d_load0" -v ld1="$load1" \
                -v ours_srv=$((pticks + app1 - d_app0 + iperf1 - d_iperf0)) -v ours_load="$wticks" \
                -v ctx0="$d_ctx0" -v ctx1="$ctx1" -v b0="$d_bytes0" -v b1="$bytes1" -v n="$n" \
                -v excl="$excl" -v ps0="$d_ps0" -v ps1="$ps1" '
                function pct(a, t) { return t > 0 ? 100 * a / t : 0 }
                BEGIN {
                        split(srv0, s0, " "); split(srv1, s1, " "); split(ld0, l0, " "); split(ld1, l1, " ")
                        ts = tl = 0
                        for (i = 1; i <= 8; i++) { ds[i] = s1[i] - s0[i]; dl[i] = l1[i] - l0[i]; ts += ds[i]; tl += dl[i] }
                        # utime and stime of a process include the irq and softirq work run in
                        # its context, which /proc/stat counts apart: others = all busy minus ours.
                        busy_s = ds[1] + ds[2] + ds[3] + ds[6] + ds[7]; busy_l = dl[1] + dl[2] + dl[3] + dl[6] + dl[7]
                        split(ctx0, c0, " "); split(ctx1, c1, " ")
                        split(b0, x0, " "); split(b1, x1, " ")
                        split(excl, e, " "); for (i in e) ex[e[i]] = 1
                        m = split(ps0, a, "\n"); for (i = 1; i <= m; i++) { split(a[i], f, " "); t0[f[1]] = f[2] }
                        m = split(ps1, a, "\n"); other = 0
                        for (i = 1; i <= m; i++) {
                                split(a[i], f, " "); if (f[1] in ex) continue
                                d = f[2] - ((f[1] in t0) ? t0[f[1]] : 0); if (d <= 0) continue
                                other += d; top[f[4] "@" f[3]] += d
                        }
                        tops = ""
                        for (k = 0; k < 3; k++) {
                                best = ""; bv = 0
                                for (q in top) if (top[q] > bv) { bv = top[q]; best = q }
                                if (best == "") break
                                tops = tops (tops == "" ? "" : ",") best ":" sprintf("%.0f%%", pct(bv, ts)); delete top[best]
                        }
                        sp = (x0[1] == "nan" || x1[1] == "nan") ? "nan" : sprintf("%.0f", (x1[1] - x0[1]) / n)
                        cp = (x0[2] == "nan" || x1[2] == "nan") ? "nan" : sprintf("%.0f", (x1[2] - x0[2]) / n)
                        printf "%.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.2f %.2f %s %s %s\n",
                                pct(ds[4], ts), pct(dl[4], tl), pct(ds[8] + dl[8], ts + tl), pct(ds[5] + dl[5], ts + tl),
                                pct(ds[7], ts), pct(busy_s - ours_srv, ts), pct(busy_l - ours_load, tl),
                                pct(other, ts), pct(ours_srv, ts), pct(ours_load, tl),
                                (c1[1] - c0[1]) * 1000 / n, (c1[2] - c0[2]) * 1000 / n, sp, cp, (tops == "" ? "-" : tops)
                }')
        set -- $line
        local k v i=1
        for k in idle_srv idle_load steal iowait softirq_srv others_srv others_load others_ps ours_srv ours_load vcsw ivcsw spliced copied; do
                v=${!i}
                add "$path" "${k}_c$c" "$v"
                i=$((i + 1))
        done
        add "$path" "load1_c$c" "$d_load1"
        # Requests per second of server CPU that our processes got (the proxy, the upstreams):
        # what the server side would serve with the CPU to itself, whatever others took.
        local ours_ticks=$((pticks + app1 - d_app0 + iperf1 - d_iperf0))
        add "$path" "cap_c$c" "$(awk -v n="$n" -v t="$ours_ticks" -v hz="$clk_tck" 'BEGIN { if (t > 0) printf "%.0f", n * hz / t; else print "nan" }')"
        printf 'rep=%s path=%s conns=%s requests=%s load1=%s idle_srv=%s idle_load=%s steal=%s iowait=%s softirq_srv=%s others_srv=%s others_load=%s others_ps=%s ours_srv=%s ours_load=%s vcsw_per_1k=%s ivcsw_per_1k=%s spliced_per_req=%s copied_per_req=%s proxy_cpus=%s top_others=%s\n' \
                "$((rep + 1))" "$path" "$c" "$n" "$d_load1" "${@:1:14}" "$cpus" "${15}" >>"$tmp/diag.txt"
}

# run_wrk PATH CONNS: requests per second, the proxy's CPU per 1,000 requests, and the figures
# that tell the machine from the proxy (diag_begin/diag_end).
run_wrk() {
        local path=$1 c=$2 out t0=0 t1=0 rps n wt
        diag_begin "$path"
        [ -n "$proxy_pid" ] && t0=$(cpu_ticks "$proxy_pid")
        # bash's time reports the reaped children's CPU, i.e. wrk's (with taskset's and ip's).
        wt=$( { TIMEFORMAT='%3U %3S'; time on_load_cpu wrk -t1 -c"$c" -d"${wrk_s}s" "http://$pod_ip:$app_port/1k" \
                >"$tmp/wrk.out" 2>&1; } 2>&1) || die "$path: wrk failed: $(cat "$tmp/wrk.out")"
        [ -n "$proxy_pid" ] && t1=$(cpu_ticks "$proxy_pid")
        out=$(cat "$tmp/wrk.out")
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
        diag_end "$path" "$c" "$n" $((t1 - t0)) "$(awk -v t="$wt" -v hz="$clk_tck" 'BEGIN { split(t, a, " "); printf "%.0f", (a[1] + a[2]) * hz }')"
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

# One measurement of one path in one repetition. HAProxy and nginx forward to a fixed address,
# so for iperf3 they are started toward its port; every path is started afresh for each step.
run_step() {
        local path=$1 step=$2 port=$app_port
        [ "$step" = iperf ] && port=$bulk_port
        if [ "$path" = direct ]; then
                [ "$step" = memory ] && return 0
                set_rules direct
        else
                set_rules captured
        fi
        start_proxy "$path" "$port"
        [ "$step" = iperf ] || check_path "$path"
        case "$step" in
        memory)
                # Idle RSS: read by start_proxy, before the first proxied connection.
                add "$path" rss_idle "$proxy_rss_start"
                add "$path" anon_idle "$proxy_anon_start"
                measure_memory "$path"
                ;;
        wrk*) run_wrk "$path" "${step#wrk}" ;;
        h2_*) run_h2load "$path" "${step#h2_}" ;;
        download) run_download "$path" ;;
        iperf) run_iperf "$path" ;;
        esac
        stop_proxy
}

# ---------------------------------------------------------------------------------------------
# Statistics and the report. res[PATH.METRIC] holds one value per repetition, in order.

# qstats V...: "median min max q1 q3" of the values that are numbers (quartiles interpolated
# linearly between ranks, as R's type 7); empty when there is none.
qstats() {
        printf '%s\n' "$@" | awk '$1 != "nan" && $1 != ""' | sort -g | awk '
                { v[NR] = $1 }
                function q(p,  h, i) { h = (NR - 1) * p + 1; i = int(h); return i >= NR ? v[NR] : v[i] + (h - i) * (v[i + 1] - v[i]) }
                END { if (NR) printf "%s %s %s %s %s", q(0.5), v[1], v[NR], q(0.25), q(0.75) }'
}
stats() { local v=${res[$1.$2]:-}; [ -n "$v" ] || return 0; qstats $v; }
med() { local s; s=$(stats "$1" "$2"); echo "${s%% *}"; }
# v2 X: X with two decimals, or nan.
v2() { awk -v x="$1" 'BEGIN { if (x == "" || x == "nan") print "nan"; else printf "%.2f\n", x }'; }

# cell PATH METRIC: "median [min-max]", the spread left out when there is one repetition.
cell() {
        local s
        s=$(stats "$1" "$2")
        if [ -z "$s" ]; then
                echo "-"
                return
        fi
        set -- $s
        local m=$1 lo=$2 hi=$3
        case "$m" in *.*) m=$(v2 "$m") ;; esac
        if [ "$reps" -gt 1 ]; then echo "$m [$lo-$hi]"; else echo "$m"; fi
}

have_path() { local p; for p in "${paths[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

# rep_ratios KIND A B METRIC [METRIC_B]: the ratio in every repetition, space-separated (nan
# where it cannot be formed). KIND div: A.METRIC / B.METRIC_B; KIND added: (A.METRIC -
# direct.METRIC) / (B.METRIC - direct.METRIC), nan when B adds nothing.
rep_ratios() {
        local kind=$1 a=$2 b=$3 m=$4 mb=${5:-$4}
        awk -v kind="$kind" -v av="${res[$a.$m]:-}" -v bv="${res[$b.$mb]:-}" -v dv="${res[direct.$m]:-}" -v n="$reps" '
                BEGIN {
                        split(av, A, " "); split(bv, B, " "); split(dv, D, " "); out = ""
                        for (i = 1; i <= n; i++) {
                                r = "nan"
                                if (kind == "div" && A[i] != "" && B[i] + 0 > 0) r = sprintf("%.3f", A[i] / B[i])
                                if (kind == "added" && A[i] != "" && B[i] != "" && D[i] != "" && B[i] - D[i] > 0)
                                        r = sprintf("%.3f", (A[i] - D[i]) / (B[i] - D[i]))
                                out = out (i > 1 ? " " : "") r
                        }
                        print out
                }'
}

# The ratios: name|what|kind a b metric [metric_b]|target (">=X", "<=X" or "-").
ratio_defs=(
        "rps_c16_vs_haproxy|req/s, 16 conns: pilotfish / haproxy|div pilotfish haproxy rps_c16|>=1.2"
        "cpu_per_req_vs_haproxy|CPU per request, 16 conns: pilotfish / haproxy|div pilotfish haproxy cpu_c16|<=0.5"
        "capacity_c16_vs_haproxy|req/s per server CPU-second, 16 conns: pilotfish / haproxy|div pilotfish haproxy cap_c16|-"
        "rps_c1_vs_haproxy|req/s, 1 conn: pilotfish / haproxy|div pilotfish haproxy rps_c1|-"
        "rps_c64_vs_haproxy|req/s, 64 conns: pilotfish / haproxy|div pilotfish haproxy rps_c64|-"
        "cpu_per_req_c1_vs_haproxy|CPU per request, 1 conn: pilotfish / haproxy|div pilotfish haproxy cpu_c1|-"
        "cpu_per_req_c64_vs_haproxy|CPU per request, 64 conns: pilotfish / haproxy|div pilotfish haproxy cpu_c64|-"
        "added_p50_1000_vs_haproxy|added p50 @ 1000 req/s: pilotfish / haproxy|added pilotfish haproxy p50_1000|-"
        "added_p50_5000_vs_haproxy|added p50 @ 5000 req/s: pilotfish / haproxy|added pilotfish haproxy p50_5000|-"
        "bulk_vs_direct|iperf3 Gbit/s: pilotfish / direct|div pilotfish direct bulk|-"
        "bulk_vs_haproxy|iperf3 Gbit/s: pilotfish / haproxy|div pilotfish haproxy bulk|-"
        "rps_c16_vs_nginx|req/s, 16 conns: pilotfish / nginx|div pilotfish nginx rps_c16|-"
        "cpu_per_req_vs_nginx|CPU per request, 16 conns: pilotfish / nginx|div pilotfish nginx cpu_c16|-"
        "rps_c16_vs_direct|req/s, 16 conns: pilotfish / direct|div pilotfish direct rps_c16|-"
        "haproxy_rps_c16_vs_direct|req/s, 16 conns: haproxy / direct|div haproxy direct rps_c16|-"
        "new_vs_before_rps_c16|req/s, 16 conns: pilotfish / pilotfish-before|div pilotfish pilotfish-before rps_c16|-"
        "new_vs_before_cpu_per_req|CPU per request, 16 conns: pilotfish / pilotfish-before|div pilotfish pilotfish-before cpu_c16|-"
        "new_vs_before_capacity_c16|req/s per server CPU-second, 16 conns: pilotfish / pilotfish-before|div pilotfish pilotfish-before cap_c16|-"
        "new_vs_before_cpu_per_req_c1|CPU per request, 1 conn: pilotfish / pilotfish-before|div pilotfish pilotfish-before cpu_c1|-"
        "new_vs_before_cpu_per_req_c64|CPU per request, 64 conns: pilotfish / pilotfish-before|div pilotfish pilotfish-before cpu_c64|-"
        "new_vs_before_rps_c1|req/s, 1 conn: pilotfish / pilotfish-before|div pilotfish pilotfish-before rps_c1|-"
        "new_vs_before_rps_c64|req/s, 64 conns: pilotfish / pilotfish-before|div pilotfish pilotfish-before rps_c64|-"
        "new_vs_before_p50_1000|p50 @ 1000 req/s: pilotfish / pilotfish-before|div pilotfish pilotfish-before p50_1000|-"
        "new_vs_before_bulk|iperf3 Gbit/s: pilotfish / pilotfish-before|div pilotfish pilotfish-before bulk|-"
        "new_vs_before_rss_idle|idle RSS: pilotfish / pilotfish-before|div pilotfish pilotfish-before rss_idle|-"
        "before_rps_c16_vs_haproxy|req/s, 16 conns: pilotfish-before / haproxy|div pilotfish-before haproxy rps_c16|>=1.2"
        "before_cpu_per_req_vs_haproxy|CPU per request, 16 conns: pilotfish-before / haproxy|div pilotfish-before haproxy cpu_c16|<=0.5"
        "before_capacity_c16_vs_haproxy|req/s per server CPU-second, 16 conns: pilotfish-before / haproxy|div pilotfish-before haproxy cap_c16|-"
)
declare -A ratio_vals ratio_what ratio_target
ratio_names=()
compute_ratios() {
        local d name what spec target kind a b m mb
        for d in "${ratio_defs[@]}"; do
                IFS='|' read -r name what spec target <<<"$d"
                read -r kind a b m mb <<<"$spec"
                have_path "$a" && have_path "$b" || continue
                [ "$kind" = added ] && ! have_path direct && continue
                ratio_names+=("$name")
                ratio_vals[$name]=$(rep_ratios "$kind" "$a" "$b" "$m" $mb)
                ratio_what[$name]=$what
                ratio_target[$name]=$target
        done
}

print_table() {
        local row m label p
        printf '\nPer path: median [min-max] of %s repetitions (raw values, unpaired; the ratios below are paired)\n' "$reps"
        printf '%-34s' "figure"
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
                "cap_c16|req/s per server CPU-s, 16 conns" \
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
                                # Paired too: the path's p50 minus direct's in the same repetition.
                                local r=${m#added_p50_} s
                                if [ "$p" = direct ] || [ -z "${res[$p.p50_$r]:-}" ] || [ -z "${res[direct.p50_$r]:-}" ]; then
                                        printf ' %-22s' "-"
                                else
                                        s=$(qstats $(awk -v a="${res[$p.p50_$r]}" -v d="${res[direct.p50_$r]}" 'BEGIN {
                                                n = split(a, A, " "); split(d, D, " "); for (i = 1; i <= n; i++) print A[i] - D[i] }'))
                                        set -- $s
                                        if [ "$reps" -gt 1 ]; then printf ' %-22s' "$1 [$2-$3]"; else printf ' %-22s' "$1"; fi
                                fi
                                ;;
                        *) printf ' %-22s' "$(cell "$p" "$m")" ;;
                        esac
                done
                printf '\n'
        done
}

print_ratio_table() {
        local name s
        printf '\nPaired ratios, computed within each repetition, then over the %s repetitions\n' "$reps"
        printf '%-32s %-56s %-7s %-11s %-11s %s\n' ratio what median "min-max" "IQR" "per repetition"
        for name in "${ratio_names[@]}"; do
                s=$(qstats ${ratio_vals[$name]})
                if [ -z "$s" ]; then
                        printf '%-32s %-56s %-7s %-11s %-11s %s\n' "$name" "${ratio_what[$name]}" nan - - "${ratio_vals[$name]}"
                        continue
                fi
                set -- $s
                printf '%-32s %-56s %-7s %-11s %-11s %s\n' "$name" "${ratio_what[$name]}" "$(v2 "$1")" \
                        "$(v2 "$2")-$(v2 "$3")" "$(v2 "$4")-$(v2 "$5")" "$(for x in ${ratio_vals[$name]}; do v2 "$x"; done | paste -sd' ' -)"
        done
}

# Issue 3's targets against HAProxy, judged on the paired medians and counted per repetition.
print_targets() {
        local name t op lim s met
        printf '\n'
        for name in "${ratio_names[@]}"; do
                t=${ratio_target[$name]}
                [ "$t" = - ] && continue
                op=${t:0:2} lim=${t:2}
                s=$(qstats ${ratio_vals[$name]})
                [ -n "$s" ] || { printf 'TARGET %s %s %s: not measured\n' "$name" "$op" "$lim"; continue; }
                set -- $s
                met=$(awk -v v="${ratio_vals[$name]}" -v op="$op" -v l="$lim" 'BEGIN { n = split(v, a, " "); k = 0
                        for (i = 1; i <= n; i++) if (a[i] != "nan" && ((op == ">=" && a[i] >= l) || (op == "<=" && a[i] <= l))) k++; print k }')
                printf 'TARGET %s %s %s: median %s [%s-%s], %s; met in %s of %s repetitions\n' "$name" "$op" "$lim" \
                        "$(v2 "$1")" "$(v2 "$2")" "$(v2 "$3")" \
                        "$(awk -v m="$1" -v op="$op" -v l="$lim" 'BEGIN { if ((op == ">=" && m >= l) || (op == "<=" && m <= l)) print "met"; else printf "missed (%.2f x of the target)", (op == ">=" ? m / l : l / m) }')" \
                        "$met" "$reps"
        done
}

# Per repetition at 16 connections: the raw figures and what tells the machine from the proxy.
print_diag() {
        local k p i
        printf '\nPer repetition, wrk 16 conns (idle, steal, iowait, others: %% of a CPU over the run; srv = CPU %s, load = CPU %s;\n' "$server_cpu" "$load_cpu"
        printf 'others = the CPU'"'"'s busy time minus ours; ctx switches per 1,000 requests; bytes per request)\n'
        printf '%-4s %-17s %7s %8s %8s %9s %6s %7s %10s %11s %6s %8s %8s %8s %8s\n' rep path "req/s" "cpu/1k" "idle srv" "idle load" steal iowait "others srv" "others load" load1 vcsw/1k ivcsw/1k spliced copied
        for ((k = 1; k <= reps; k++)); do
                for p in ${orders[$k]}; do
                        printf '%-4s %-17s' "$k" "$p"
                        for i in rps_c16 cpu_c16 idle_srv_c16 idle_load_c16 steal_c16 iowait_c16 others_srv_c16 others_load_c16 load1_c16 vcsw_c16 ivcsw_c16 spliced_c16 copied_c16; do
                                v=$(awk -v l="${res[$p.$i]:-}" -v k="$k" 'BEGIN { split(l, a, " "); print (a[k] == "" ? "-" : a[k]) }')
                                case "$i" in
                                rps_c16) printf ' %7s' "$v" ;; cpu_c16 | idle_srv_c16) printf ' %8s' "$v" ;;
                                idle_load_c16) printf ' %9s' "$v" ;; steal_c16) printf ' %6s' "$v" ;; iowait_c16) printf ' %7s' "$v" ;;
                                others_srv_c16) printf ' %10s' "$v" ;; others_load_c16) printf ' %11s' "$v" ;; load1_c16) printf ' %6s' "$v" ;;
                                *) printf ' %8s' "$v" ;;
                                esac
                        done
                        printf '\n'
                done
        done
        printf '\nRaw per repetition (in repetition order; the paths'"'"' order in repetition k is in the table above)\n'
        for i in rps_c1 rps_c16 rps_c64 cpu_c1 cpu_c16 cpu_c64 cap_c16 p50_1000 p50_5000 bulk rss_idle; do
                for p in "${paths[@]}"; do
                        if [ -n "${res[$p.$i]:-}" ]; then printf '%-10s %-17s %s\n' "$i" "$p" "${res[$p.$i]}"; fi
                done
        done
}

print_ratios() {
        local name s out="RATIOS reps=$reps"
        for name in rps_c16_vs_haproxy added_p50_1000_vs_haproxy bulk_vs_direct cpu_per_req_vs_haproxy capacity_c16_vs_haproxy \
                new_vs_before_rps_c16 new_vs_before_cpu_per_req new_vs_before_capacity_c16 before_rps_c16_vs_haproxy before_cpu_per_req_vs_haproxy; do
                [ -n "${ratio_vals[$name]:-}" ] || continue
                s=$(qstats ${ratio_vals[$name]})
                if [ -z "$s" ]; then out+=" $name=nan"; continue; fi
                set -- $s
                out+=" $name=$(v2 "$1")[$(v2 "$2")..$(v2 "$3")]"
        done
        if have_path pilotfish; then
                out+=" idle_rss_kib=$(v=$(med pilotfish rss_idle); echo "${v:-nan}")"
                out+=" rss_per_conn_kib=$(awk -v v="$(med pilotfish rss_per_conn)" 'BEGIN { if (v == "") print "nan"; else { n = int(v); print (v > n ? n + 1 : n) } }')"
        fi
        echo "$out"
}

# ---------------------------------------------------------------------------------------------
# Main

# Room for the held connections (two fds each in a proxy) whatever the container allows.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
ulimit -n "$nofile"
[ "$nofile" -ge $((hold_count * 2 + 1000)) ] || die "the open-files limit ($nofile) is too low for $hold_count connections"
log "$("$tmp/bin/pilotfish" --version 2>&1 | head -n1); $reps repetition(s); paths ${paths[*]}; wrk ${wrk_s}s, h2load ${h2_s}s, iperf3 ${iperf_s}s; load on CPU $load_cpu, servers on CPU $server_cpu"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
stat_start=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $5, $6, $9 }' /proc/stat)
started=$(date +%s)
setup_namespaces
set_rules captured
start_upstreams
log "namespaces $ns_client ($client_ip) and $ns_pod ($pod_ip) ready"

declare -A orders
for ((rep = 0; rep < reps; rep++)); do
        order=()
        for ((i = 0; i < ${#paths[@]}; i++)); do order+=("${paths[$(((i + rep) % ${#paths[@]}))]}"); done
        orders[$((rep + 1))]="${order[*]}"
        log "repetition $((rep + 1))/$reps: order ${order[*]}"
        for step in "${steps[@]}"; do
                for path in "${order[@]}"; do
                        run_step "$path" "$step"
                done
                case "$step" in
                wrk16)
                        line=""
                        for path in "${order[@]}"; do
                                line+=" $path $(awk '{print $NF}' <<<"${res[$path.rps_c16]}")${res[$path.cpu_c16]:+ ($(awk '{print $NF}' <<<"${res[$path.cpu_c16]}") ms/1k)}"
                        done
                        log "  wrk 16 conns:$line"
                        ;;
                *) log "  $step done" ;;
                esac
        done
done

stat_end=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $5, $6, $9 }' /proc/stat)
if [ "${BENCH_KEEP:-0}" = 1 ]; then
        for k in "${!res[@]}"; do echo "$k ${res[$k]}"; done | sort >"$tmp/raw.txt"
fi
compute_ratios
report() {
        echo "pilotfish bench/proxy.sh$([ "$quick" = 1 ] && echo ' --quick') (paired), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, kernel $(uname -r)"
        echo "binary $pilotfish_src ($("$tmp/bin/pilotfish" --version 2>&1 | head -n1), built $(date -u -r "$pilotfish_src" '+%Y-%m-%d %H:%M UTC')), script tree $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
        [ -z "$before_src" ] || echo "before $before_src ($("$tmp/before/pilotfish" --version 2>&1 | head -n1), built $(date -u -r "$before_src" '+%Y-%m-%d %H:%M UTC'))"
        echo "took $(( $(date +%s) - started )) s; load average (1/5/15 min) at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
        awk -v a="$stat_start" -v b="$stat_end" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0
                for (i = 1; i <= 4; i++) { d[i] = y[i] - x[i]; t += d[i] }
                printf "whole machine over the run: busy %.1f%%, idle %.1f%%, iowait %.1f%%, steal %.1f%%\n", 100 * d[1] / t, 100 * d[2] / t, 100 * d[3] / t, 100 * d[4] / t }'
        echo "wrk ${wrk_s}s per run; h2load ${h2_s}s (+1s warm-up), $h2_clients conns, 1 req in flight each; iperf3 ${iperf_s}s (+1s omitted), 1 stream"
        for ((k = 1; k <= reps; k++)); do echo "repetition $k order: ${orders[$k]}"; done
        print_table
        print_ratio_table
        print_diag
        print_targets
        print_ratios
}
if [ "${BENCH_KEEP:-0}" = 1 ]; then report | tee "$tmp/report.txt"; else report; fi
