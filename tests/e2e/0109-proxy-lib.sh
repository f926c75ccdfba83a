# shellcheck shell=bash
#
# 0109-proxy-lib.sh: sourced, after lib.sh, by the `pilotfish proxy` end-to-end tests
# (0100-proxy-http, 0101-proxy-tproxy, 0102-proxy-tcp, 0103-proxy-cli). It is not a test itself
# and is not in meson.build's e2e_tests; it carries this number only to sit next to them.
#
# Those tests build two "pods" on one veth pair, each with the capture rules of Istio's init
# container and its own `pilotfish proxy`, and send real traffic (curl to nginx, probe to probe)
# from pod A to pod B, so that every connection crosses A's outbound listener and B's inbound
# listener. What they share lives here:
#
#   - the iptables backend the pods use (one is enough: the rules themselves are 0002-0009's
#     subject; here they are only the way connections reach the proxy);
#   - pods_new: the two namespaces, the link and the addresses (IPv4 198.18.0.1/.2, IPv6
#     2001:2::1/::2);
#   - proxy_start/proxy_wait_ready/proxy_stop: the proxy as Istio runs it (UID/GID 1337,
#     registered for cleanup), with readiness polled on /healthz/ready, stopped with SIGTERM
#     and checked for a clean exit (and, in the ASan build, for sanitizer reports);
#   - nginx_start: a real nginx from a config file in the scratch directory, with WebDAV PUT and
#     an access log that records the client address each request came from;
#   - metrics and metric_sum: a Prometheus scrape and the sum of the samples matching labels.

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
        echo "0109-proxy-lib.sh is sourced by tests/e2e/010*-proxy-*.sh; it is not a test" >&2
        exit 2
fi

PF_PODA=198.18.0.1
PF_PODB=198.18.0.2
PF_PODA6=2001:2::1
PF_PODB6=2001:2::2
# Istio's init container arguments (ARCHITECTURE.md), REDIRECT mode.
# shellcheck disable=SC2034,SC2054 # used by the tests; the commas are one argument
PF_CAPTURE=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020)
# Every curl is bounded; tests pass --max-time of their own where a transfer takes longer.
PF_CURL=(curl -sS --max-time 5 --noproxy '*')

# pf_backend: sets PF_BACKEND to an iptables backend whose tools are all here (nft first),
# or skips the whole test.
pf_backend() {
        local b t ok
        for b in nft legacy; do
                ok=1
                for t in iptables-$b iptables-$b-save ip6tables-$b ip6tables-$b-save; do
                        command -v "$t" >/dev/null || ok=0
                done
                if [ "$ok" = 1 ]; then
                        PF_BACKEND=$b
                        return 0
                fi
        done
        skip_all "neither iptables-nft nor iptables-legacy (with ip6tables) is installed"
}

# pf_need TOOL...: the whole test needs these programs (a skip, so a failure under CI=true).
pf_need() {
        local t
        for t in "$@"; do
                command -v "$t" >/dev/null || skip_all "$t not found"
        done
}

# pods_new [4|6|46]: namespaces "a" and "b" joined by a veth (a:eth0 <-> b:eth0), with the IPv4
# addresses, the IPv6 ones, or both.
pods_new() {
        local fam=${1:-4}
        netns_new a
        netns_new b
        veth_pair a eth0 b eth0
        if [[ "$fam" == *4* ]]; then
                addr_add a eth0 $PF_PODA/24
                addr_add b eth0 $PF_PODB/24
        fi
        if [[ "$fam" == *6* ]]; then
                addr_add a eth0 $PF_PODA6/64
                addr_add b eth0 $PF_PODB6/64
        fi
}

# proxy_start NS NAME [--caps CAPS] [--uid U] [--env K=V]... [--nofile N] [--ready-port P] [--no-wait]
#             -- ARGS...
# Starts `pilotfish proxy ARGS` in NS as U (default the proxy UID/GID 1337), with ambient
# capabilities CAPS if given, RLIMIT_NOFILE N (soft and hard) if given, logging to
# $E2E_TMP/NAME.log. It is registered for cleanup; its
# pid is left in PF_PID. Unless --no-wait, waits (bounded) until /healthz/ready on P (default
# 15021) answers 200 and returns non-zero, showing the log, if it does not.
PF_PID=
proxy_start() {
        local n=$1 name=$2 caps='' uid=$E2E_PROXY_UID port=15021 wait=1 log envs=() cmd=()
        shift 2
        while [ $# -gt 0 ]; do
                case $1 in
                --caps) caps=$2; shift 2 ;;
                --uid) uid=$2; shift 2 ;;
                --env) envs+=("$2"); shift 2 ;;
                --nofile) cmd+=(prlimit --nofile="$2:$2"); shift 2 ;;
                --ready-port) port=$2; shift 2 ;;
                --no-wait) wait=0; shift ;;
                --) shift; break ;;
                *) break ;;
                esac
        done
        log="$E2E_TMP/$name.log"
        cmd+=(setpriv --reuid="$uid" --regid="$uid" --clear-groups)
        [ -n "$caps" ] && cmd+=(--inh-caps="$caps" --ambient-caps="$caps")
        # One exec chain (ip netns exec, env, prlimit, setpriv), so $! is the proxy itself and the
        # cleanup's signals reach it.
        ip netns exec "$(ns "$n")" env "${envs[@]}" "${cmd[@]}" "$PILOTFISH" proxy "$@" \
                >"$log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        PF_PID=$!
        E2E_PIDS+=("$PF_PID")
        [ "$wait" = 1 ] || return 0
        if ! proxy_wait_ready "$n" "$PF_PID" "$port" 10; then
                diag "pilotfish proxy $(show_args "$@") in $n did not become ready on :$port"
                diag_file "$log" "$name"
                return 1
        fi
}

# http_code NS URL [CURL-ARGS...]: the HTTP status of URL fetched inside NS ("000" if none).
http_code() {
        local n=$1 url=$2
        shift 2
        in_ns "$n" "${PF_CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null
}

# proxy_wait_ready NS PID PORT SECONDS: polls GET /healthz/ready until it is 200; fails early
# when PID has exited.
proxy_wait_ready() {
        local n=$1 pid=$2 port=$3 deadline=$((SECONDS + $4))
        while [ "$SECONDS" -lt "$deadline" ]; do
                kill -0 "$pid" 2>/dev/null || return 1
                [ "$(http_code "$n" "http://127.0.0.1:$port/healthz/ready" --max-time 1)" = 200 ] && return 0
                sleep 0.05
        done
        return 1
}

# wait_exit PID SECONDS: waits for PID (a child of this shell) to exit, at most SECONDS; sets
# PF_RC to its exit status, or to "running" if it is still there.
PF_RC=
wait_exit() {
        local pid=$1 deadline=$((SECONDS + $2))
        PF_RC=running
        while kill -0 "$pid" 2>/dev/null; do
                [ "$SECONDS" -ge "$deadline" ] && return 1
                sleep 0.02
        done
        wait "$pid"
        PF_RC=$?
}

# proxy_stop PID NAME DESC: one subtest: SIGTERM (what Kubernetes sends) makes the proxy drain
# and exit 0 within 10 s, and its log ($E2E_TMP/NAME.log) holds no sanitizer report, so that a
# run with the ASan build checks for leaks and undefined behaviour too. Open connections must
# have ended first (else the drain waits for them).
proxy_stop() {
        local pid=$1 log="$E2E_TMP/$2.log" desc=$3
        kill -TERM "$pid" 2>/dev/null
        wait_exit "$pid" 10
        if [ "$PF_RC" = 0 ] && ! grep -qE "Sanitizer|runtime error" "$log"; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "exit status $PF_RC (want 0)"
                diag_file "$log" "$2"
                return 1
        fi
}

# wait_log FILE ERE SECONDS: polls until a line of FILE matches ERE; prints that line.
wait_log() {
        local deadline=$((SECONDS + $3))
        while :; do
                grep -E -- "$2" "$1" 2>/dev/null && return 0
                [ "$SECONDS" -ge "$deadline" ] && return 1
                sleep 0.05
        done
}

# metrics NS [PORT [PATH]]: the proxy's Prometheus text (default :15090/stats/prometheus).
metrics() {
        in_ns "$1" "${PF_CURL[@]}" "http://127.0.0.1:${2:-15090}${3:-/stats/prometheus}"
}

# metric_sum TEXT NAME [LABEL=\"VALUE\"]...: the sum of NAME's samples whose label set contains
# every given label="value" (fixed strings), or "none" when no sample matches.
metric_sum() {
        local text=$1 name=$2
        shift 2
        awk -v name="$name" '
                BEGIN { for (i = 1; i < ARGC; i++) f[i] = ARGV[i]; n = ARGC - 1; ARGC = 1 }
                index($0, name "{") == 1 || $1 == name {
                        for (i = 1; i <= n; i++)
                                if (index($0, f[i]) == 0)
                                        next
                        s += $NF
                        found = 1
                }
                END { if (found) printf "%.0f\n", s; else print "none" }' "$@" <<<"$text"
}

# wait_metric NS NAME WANT SECONDS LABEL...: polls until metric_sum of NAME is WANT; prints the
# last value seen either way (a relay's close is counted when its last socket closes, a moment
# after the client sees the end).
wait_metric() {
        local n=$1 name=$2 want=$3 deadline=$((SECONDS + $4)) got
        shift 4
        while :; do
                got=$(metric_sum "$(metrics "$n")" "$name" "$@")
                if [ "$got" = "$want" ] || [ "$SECONDS" -ge "$deadline" ]; then
                        echo "$got"
                        return 0
                fi
                sleep 0.05
        done
}

# nginx_start NS NAME LISTEN: a real nginx serving $E2E_TMP/NAME/www on LISTEN (nginx syntax:
# "198.18.0.2:80", "[2001:2::2]:80"), with PUT (WebDAV) and an access log
# $E2E_TMP/NAME/access.log of "client method uri status request_length bytes_sent" lines.
# Everything it writes lives under $E2E_TMP/NAME; it runs as root (`user root`).
nginx_start() {
        local n=$1 name=$2 listen=$3 dir pid m tmp_paths=() code deadline
        dir="$E2E_TMP/$name"
        mkdir -p "$dir/www" "$dir/tmp"
        for m in proxy fastcgi uwsgi scgi; do
                nginx -V 2>&1 | grep -q -- "--without-http_${m}_module" && continue
                tmp_paths+=("${m}_temp_path $dir/tmp/$m;")
        done
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $dir/nginx.pid;
error_log $dir/error.log info;
events { worker_connections 128; }
http {
    default_type application/octet-stream;
    log_format pf '\$remote_addr \$request_method \$request_uri \$status \$request_length \$bytes_sent';
    access_log $dir/access.log pf;
    client_body_temp_path $dir/tmp/body;
    ${tmp_paths[*]}
    client_max_body_size 64m;
    keepalive_timeout 0;
    server {
        listen $listen;
        root $dir/www;
        location / {
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw all:r;
        }
    }
}
EOF
        ip netns exec "$(ns "$n")" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
                >"$dir/stdout.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        # Ready once it answers on its address: from inside its own pod, as root, which the
        # capture rules let through (loopback, not the proxy).
        deadline=$((SECONDS + 10))
        while :; do
                code=$(http_code "$n" "http://$listen/" --max-time 1)
                case $code in 200 | 403 | 404) break ;; esac
                if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
                        diag_file "$dir/stdout.log" "nginx stdout"
                        diag_file "$dir/error.log" "nginx error.log"
                        bail "nginx $name on $listen in $n did not start"
                fi
                sleep 0.05
        done
        : >"$dir/access.log"
}

# sha FILE: the sha256 of FILE, the hash alone.
sha() {
        sha256sum "$1" | cut -d' ' -f1
}

# json_ok TEXT: TEXT is one valid JSON document.
json_ok() {
        jq -e . >/dev/null 2>&1 <<<"$1"
}
