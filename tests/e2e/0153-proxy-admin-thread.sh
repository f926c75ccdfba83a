#!/usr/bin/env bash
#
# 0153-proxy-admin-thread: the health, metrics and admin endpoints and the application probes
# run on the admin's own thread ("pf-admin"), not on worker 0's loop, so nothing the admin does
# holds up a relay (issue 11, section 2: a scrape of 10,000 series took 200-300 ms on worker 0
# and its relays stalled meanwhile). Guards the commit that gave the admin its own thread.
#
#   pod a  eth0 198.18.0.1/24, 2001:2::1/64 ---- veth ---- eth0 198.18.0.2/24, 2001:2::2/64  pod b
#          capture rules (REDIRECT, IPv6 too), INPUT drops port 9               loadgen echo-server :7000
#          pilotfish proxy --workers 2 (uid 1337),                    (IPv4) and [2001:2::2]:7001
#          one application probe: HTTP to 198.18.0.1:9, 12 s timeout
#          loadgen clients (uid 0, "the application") -> 15001 -> pod b
#
# What is shown, with no timing threshold deciding anything:
#   1. the process has one thread named pf-admin and one pf-worker-1 (worker 0 is the main
#      thread), and no other pf- thread;
#   2. while four application probes hang on a port that drops packets (each pending until its
#      12 s timeout), 100 relayed connections through 15001 all complete and /healthz/ready
#      answers 200; the probes were still pending when that was done (else the scenario proved
#      nothing), and then each answers 500 "connect timed out" (a timeout longer than the
#      admin's 10 s read timeout: that timeout used to close the connection with no answer);
#   3. with the admin thread stopped outright (ptrace: PTRACE_SEIZE + PTRACE_INTERRUPT of that
#      one thread, the extreme of a busy admin), /healthz/ready does not answer (the control:
#      the endpoints really live on that thread), yet 200 relayed connections through 15001 all
#      complete; let go, the admin answers the request that waited and counts those 200;
#   4. GET /connections with held IPv4 and IPv6 connections is valid JSON (python3's json
#      module) listing them. No field of it can hold a character that needs escaping today
#      (addresses and ports from inet_ntop, fixed words), but every string goes through
#      common/json.h's escaper all the same;
#   5. SIGINT while a probe is pending: the proxy quits with 0, the admin thread joined and its
#      connections freed (the ASan build reports any leak in the log, which is checked).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl python3
pf_backend
[ -x "${LOADGEN:-}" ] || bail "LOADGEN must name the loadgen binary (got '${LOADGEN:-}')"

A=$PF_PODA
B=$PF_PODB
B6=$PF_PODB6
PROBERS='{"/app-health/app/livez":{"httpGet":{"path":"/","port":9},"timeoutSeconds":12}}'

pods_new 46
apply_rules "pod a" a "$PF_BACKEND" "${PF_CAPTURE[@]}" --ipv6=true || bail "capture rules in pod a"
must in_ns a "iptables-$PF_BACKEND" -A INPUT -p tcp --dport 9 -j DROP

# echo_start NAME ARGS...: a loadgen echo server in pod b.
echo_start() {
        local name=$1
        shift
        ip netns exec "$(ns b)" "$LOADGEN" echo-server "$@" --ready-file "$E2E_TMP/ready/$name" --timeout 300 \
                >"$E2E_TMP/$name.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        E2E_PIDS+=("$!")
        wait_file "$E2E_TMP/ready/$name" 5 "$!" || { diag_file "$E2E_TMP/$name.log"; bail "echo server $name did not start"; }
}
echo_start echo4 --port 7000
echo_start echo6 --port 7001 --addr "$B6"

proxy_start a proxy --env "ISTIO_KUBE_APP_PROBERS=$PROBERS" --env "INSTANCE_IP=$A" -- \
        sidecar --workers 2 || bail "the proxy did not start"
PID=$PF_PID

# kv KEY LINE: the value of the token KEY=value in LINE.
kv() {
        local tok
        for tok in $2; do
                [[ "$tok" == "$1="* ]] && { echo "${tok#*=}"; return 0; }
        done
        return 1
}

# churn N: N short connections from pod a's application to B:7000, through 15001, 4 at a time;
# prints loadgen's summary.
churn() {
        _need_addr "$B"
        in_ns a "$LOADGEN" churn --to "$B:7000" --count "$1" --concurrency 4 --payload 512 --timeout 20 \
                --max-seconds 60 2>>"$E2E_TMP/loadgen.err"
}

# opened: istio_tcp_connections_opened_total to B:7000 as the proxy counts it.
opened() {
        local n
        n=$(metric_sum "$(metrics a)" istio_tcp_connections_opened_total "destination_service=\"$B:7000\"")
        [ "$n" = none ] && n=0
        echo "$n"
}

# pending N: waits (at most 5 s) until N application probes hang in pod a, their connects to
# port 9 in SYN-SENT (the port drops packets); prints how many there are.
pending() {
        local deadline=$((SECONDS + 5)) n
        while n=$(in_ns a ss -Htn state syn-sent "dport = :9" | wc -l) && [ "$n" -lt "$1" ] &&
                [ "$SECONDS" -lt "$deadline" ]; do
                sleep 0.05
        done
        echo "$n"
}

# thread_tid NAME: the id of the proxy's thread named NAME.
thread_tid() {
        local f
        for f in /proc/"$PID"/task/*/comm; do
                [ "$(cat "$f" 2>/dev/null)" = "$1" ] && { f=${f%/comm}; echo "${f##*/}"; return 0; }
        done
        return 1
}

# ---------------------------------------------------------------------------------------------
# 1. The threads

names=$(cat /proc/"$PID"/task/*/comm | sort | tr '\n' ' ')
diag "threads: $names"
assert_eq "one thread is named pf-admin" "$(grep -cx pf-admin /proc/"$PID"/task/*/comm | awk -F: '{s += $NF} END {print s}')" 1
assert_eq "one thread is named pf-worker-1 (worker 0 is the main thread)" \
        "$(grep -cx pf-worker-1 /proc/"$PID"/task/*/comm | awk -F: '{s += $NF} END {print s}')" 1
# (A sanitizer build has a thread of its own, so the total is not the point.)
assert_eq "no other pf- thread: worker 0 is the main thread, so --workers 2 makes one pf-worker" \
        "$(grep -c '^pf-' /proc/"$PID"/task/*/comm | awk -F: '{s += $NF} END {print s}')" 2

# ---------------------------------------------------------------------------------------------
# 2. Application probes pending on a hanging port

probe_pids=()
for i in 1 2 3 4; do
        in_ns a "${PF_CURL[@]}" --max-time 30 -o "$E2E_TMP/probe-$i.body" -w '%{http_code}' \
                "http://$A:15020/app-health/app/livez" >"$E2E_TMP/probe-$i.code" 2>&1 &
        probe_pids+=("$!")
        E2E_PIDS+=("$!")
done
assert_eq "four application probes are pending (their connects to port 9 hang)" "$(pending 4)" 4
res=$(churn 100)
assert_eq "while they are pending, 100 relayed connections through 15001 all complete" \
        "$(kv ok "$res") $(kv failed "$res")" "100 0" || diag "$res"
assert_eq "while they are pending, GET /healthz/ready answers 200" \
        "$(http_code a http://127.0.0.1:15021/healthz/ready)" 200
pending=0
for p in "${probe_pids[@]}"; do
        kill -0 "$p" 2>/dev/null && pending=$((pending + 1))
done
assert_eq "the four probes were still pending when that was done (else this proved nothing)" "$pending" 4
for p in "${probe_pids[@]}"; do
        wait "$p"
done
for i in 1 2 3 4; do
        assert_eq "probe $i answers 500 after its timeout: $(head -c 80 "$E2E_TMP/probe-$i.body")" \
                "$(cat "$E2E_TMP/probe-$i.code") $(cat "$E2E_TMP/probe-$i.body")" "500 connect timed out"
done

# ---------------------------------------------------------------------------------------------
# 3. The admin thread stopped outright

# freeze TID READY: stops one thread of the proxy with ptrace (the others run on) and writes
# READY once it is stopped; lets it go on SIGTERM, or when it is killed (the kernel detaches a
# tracee whose tracer exits and lets it run). Run in the background, it execs python3, so that
# $! is the tracer itself and the signals reach it. Exits 77 when ptrace is not permitted.
freeze() {
        exec python3 - "$@" <<'EOF'
import ctypes, errno, os, signal, sys

PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, WALL = 17, 0x4206, 0x4207, 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid, ready = int(sys.argv[1]), sys.argv[2]


def ptrace(req, what):
    if libc.ptrace(req, tid, None, None) != 0:
        err = ctypes.get_errno()
        print(f"{what} of thread {tid}: {os.strerror(err)}", file=sys.stderr)
        sys.exit(77 if err == errno.EPERM else 1)


signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
ptrace(PTRACE_SEIZE, "PTRACE_SEIZE")
ptrace(PTRACE_INTERRUPT, "PTRACE_INTERRUPT")
os.waitpid(tid, WALL)
with open(ready, "w") as f:
    f.write("stopped\n")
signal.sigwait({signal.SIGTERM})
ptrace(PTRACE_DETACH, "PTRACE_DETACH")
EOF
}

stopped_admin() {
        local before tid freezer waiting rc res
        before=$(opened)
        tid=$(thread_tid pf-admin) || bail "no pf-admin thread"
        freeze "$tid" "$E2E_TMP/ready/frozen" >"$E2E_TMP/freeze.log" 2>&1 &
        freezer=$!
        E2E_PIDS+=("$freezer")
        if ! wait_file "$E2E_TMP/ready/frozen" 5 "$freezer"; then
                wait "$freezer"
                rc=$?
                diag_file "$E2E_TMP/freeze.log"
                # Root without CAP_SYS_PTRACE (a container's default) may not trace UID 1337.
                [ "$rc" = 77 ] && { skip "the admin thread stopped outright" "ptrace is not permitted here"; return; }
                bail "could not stop the admin thread"
        fi
        assert_eq "the admin thread ($tid) is stopped (state t in /proc)" \
                "$(awk '/^State:/ {print $2}' /proc/"$PID"/task/"$tid"/status)" t
        assert_eq "control: with the admin thread stopped, GET /healthz/ready gets no answer" \
                "$(http_code a http://127.0.0.1:15021/healthz/ready --max-time 2)" 000
        in_ns a "${PF_CURL[@]}" --max-time 30 -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready \
                >"$E2E_TMP/waiting.code" 2>&1 &
        waiting=$!
        E2E_PIDS+=("$waiting")
        res=$(churn 200)
        assert_eq "with the admin thread stopped, 200 relayed connections through 15001 all complete" \
                "$(kv ok "$res") $(kv failed "$res")" "200 0" || diag "$res"
        assert_eq "... and the admin thread was stopped throughout" \
                "$(awk '/^State:/ {print $2}' /proc/"$PID"/task/"$tid"/status)" t
        kill -TERM "$freezer"
        wait "$freezer"
        wait "$waiting"
        assert_eq "let go, the admin answers the readiness request that waited: 200" "$(cat "$E2E_TMP/waiting.code")" 200
        assert_eq "the metrics count the 200 connections relayed meanwhile" "$(($(opened) - before))" 200
}
stopped_admin

# ---------------------------------------------------------------------------------------------
# 4. GET /connections is valid JSON

hold() {
        _need_addr "$(_host_of "$2")"
        ip netns exec "$(ns a)" "$LOADGEN" hold --to "$2" --conns "$3" --payload 100 --hold-seconds 120 \
                --timeout 10 --max-seconds 20 --ready-file "$E2E_TMP/ready/$1" \
                >"$E2E_TMP/$1.out" 2>"$E2E_TMP/$1.err" {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        E2E_PIDS+=("$!")
        HOLD_PID=$!
        if wait_file "$E2E_TMP/ready/$1" 15 "$HOLD_PID" && grep -q "established=$3 failed=0" "$E2E_TMP/ready/$1"; then
                ok "$3 connection(s) from the application to $2 are established and held"
        else
                not_ok "$3 connection(s) from the application to $2 are established and held"
                diag_file "$E2E_TMP/$1.err"
        fi
}
hold held4 "$B:7000" 3
held4=$HOLD_PID
hold held6 "[$B6]:7001" 1
held6=$HOLD_PID
in_ns a "${PF_CURL[@]}" http://127.0.0.1:15000/connections >"$E2E_TMP/connections.json" 2>&1
# connections_rows FILE: FILE parsed by python3's json module (strict: exits non-zero on
# anything that is not one valid JSON document), one sorted line per connection.
connections_rows() {
        python3 - "$1" <<'EOF'
import json, sys

with open(sys.argv[1], "rb") as f:
    doc = json.loads(f.read().decode("utf-8"))
rows = sorted((c["direction"], c["original_dst"], c["state"], c["client"].rsplit(":", 1)[0])
              for c in doc["connections"])
print("\n".join(" ".join(r) for r in rows))
EOF
}
if summary=$(connections_rows "$E2E_TMP/connections.json" 2>&1); then
        ok "GET /connections is valid JSON (python3 json)"
else
        not_ok "GET /connections is valid JSON (python3 json)"
        diag "$summary"
        diag_file "$E2E_TMP/connections.json" "GET /connections"
fi
assert_eq "it lists the held connections, IPv4 and IPv6, with their addresses as strings" "$summary" \
"outbound 198.18.0.2:7000 established 198.18.0.1
outbound 198.18.0.2:7000 established 198.18.0.1
outbound 198.18.0.2:7000 established 198.18.0.1
outbound [2001:2::2]:7001 established [2001:2::1]"
kill -TERM "$held4" "$held6" 2>/dev/null
wait "$held4" "$held6" 2>/dev/null

# ---------------------------------------------------------------------------------------------
# 5. SIGINT with a probe pending

in_ns a "${PF_CURL[@]}" --max-time 30 -o /dev/null "http://$A:15020/app-health/app/livez" >/dev/null 2>&1 &
E2E_PIDS+=("$!")
assert_eq "a probe is pending" "$(pending 1)" 1
kill -INT "$PID"
wait_exit "$PID" 5
assert_eq "SIGINT with a probe pending: the proxy quits with 0 (its threads joined)" "$PF_RC" 0 ||
        diag_file "$E2E_TMP/proxy.log" proxy
check_fails "... and its log holds no sanitizer report (the admin's connections and probe freed)" \
        grep -E "Sanitizer|runtime error" "$E2E_TMP/proxy.log"
