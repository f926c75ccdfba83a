#!/usr/bin/env bash
#
# 0151-proxy-drain: `pilotfish proxy` drains (SIGTERM, POST /drain) and quits (POST /quitquitquit)
# as docs/cli/proxy.md says: readiness turns 503, the inbound listener closes, connections
# already open finish, outbound keeps working, and the process exits 0 when nothing is left open
# or when --drain-duration is over.
#
# Topology, fresh for each scenario (one iptables backend; the capture is not the subject):
#
#   pod A  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  pod B
#          capture rules + proxy (uid 1337)                     capture rules + proxy (uid 1337)
#          loadgen clients (uid 0)  ---- 198.18.0.2:7000 ---->  loadgen echo-server *:7000
#          loadgen echo-server *:7000 (scenario 3)
#
# The assertions are built so that timing cannot decide them:
#   - "a connection open before the drain completes" is judged on connections known to have been
#     relayed end to end before it: held connections whose first echo came back before SIGTERM,
#     and, under steady load (loadgen rate: fresh connections, each echoing twice with a 300 ms
#     gap), every connection whose first echo came back at all, since B can only have relayed
#     it by accepting it; connections still being opened when the listener closes may fail,
#     which is what closing the inbound listener means (the capture rule still sends new inbound
#     connections to 15006, which refuses them);
#   - "B refuses new inbound connections while draining" is checked with a connection made
#     right after SIGTERM and, as the control, the same connection made right before it;
#   - the exit is timed against a --drain-duration far longer than the wait (30 s) when the exit
#     must come from the last connection closing, and against 2 s with a connection held open.
#
# Scenarios:
#   1. SIGTERM to B under load: 503 at once, 15006 closed while 15001 stays, new inbound refused,
#      the load's established connections and 4 held ones all complete; B exits 0 as soon as the
#      last held connection closes.
#   2. --drain-duration 2s with a connection held open: B waits for it, then exits 0 after ~2 s
#      and the connection is cut.
#   3. POST /drain to A: A's readiness is 503, new outbound connections from A still succeed,
#      inbound connections to A are refused; A exits 0 once its last connection closes.
#   4. POST /quitquitquit to B with connections open: 200, and B exits 0 at once.

. "$(dirname "$0")/lib.sh"
e2e_init

if [ -z "${LOADGEN:-}" ] || [ ! -x "$LOADGEN" ]; then
        bail "LOADGEN must name the loadgen binary (got '${LOADGEN:-}')"
fi
for tool in curl jq ss; do
        command -v "$tool" >/dev/null || skip_all "$tool not found"
done

WORKERS=2
REF=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d '15090,15021,15020')

# ---------------------------------------------------------------------------------------------
# Helpers

declare -A PROXY_PID

now_ms() {
        local t=${EPOCHREALTIME/./}
        echo $((10#$t / 1000))
}

# kv KEY LINE: the value of the token KEY=value in LINE (whole tokens: "ok" is not "straddled_ok").
kv() {
        local tok
        for tok in $2; do
                if [[ "$tok" == "$1="* ]]; then
                        echo "${tok#*=}"
                        return 0
                fi
        done
        return 1
}

# http_code NS METHOD URL: the HTTP status (000 when nothing answered); 2 s bound.
http_code() {
        in_ns "$1" curl -s -m 2 -X "$2" -o /dev/null -w '%{http_code}' "$3" 2>/dev/null
}

# connections_count NS: how many connections the admin API lists (GET /connections).
connections_count() {
        in_ns "$1" curl -s -m 5 http://127.0.0.1:15000/connections 2>/dev/null | jq '.connections | length'
}

# listening NS PORT: exit 0 when some socket listens on TCP PORT in NS.
listening() {
        [ -n "$(in_ns "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]
}

# proxy_start NS [FLAGS...]: starts `pilotfish proxy sidecar` in NS as UID/GID 1337 and waits
# up to 5 s for GET /healthz/ready to answer 200. One subtest.
proxy_start() {
        local n=$1 log pid code deadline
        shift
        log="$E2E_TMP/proxy-$n.log"
        ip netns exec "$(ns "$n")" setpriv --reuid="$E2E_PROXY_UID" --regid="$E2E_PROXY_UID" --clear-groups \
                "$PILOTFISH" proxy sidecar --workers "$WORKERS" "$@" \
                >"$log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        PROXY_PID[$n]=$pid
        deadline=$((SECONDS + 5))
        while :; do
                code=$(http_code "$n" GET http://127.0.0.1:15021/healthz/ready)
                [ "$code" = 200 ] && break
                if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
                        not_ok "$SCEN: proxy in pod $n starts and /healthz/ready answers 200 (last: $code)"
                        diag_file "$log" "proxy $n"
                        bail "the proxy in pod $n did not start"
                fi
                sleep 0.05
        done
        ok "$SCEN: proxy in pod $n starts ($*) and /healthz/ready answers 200"
}

# echo_start NS: a loadgen echo server on *:7000 in NS.
echo_start() {
        local ready="$E2E_TMP/ready/echo-$1"
        rm -f "$ready"
        ip netns exec "$(ns "$1")" "$LOADGEN" echo-server --port 7000 --ready-file "$ready" --timeout 300 \
                >"$E2E_TMP/echo-$1.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        E2E_PIDS+=("$!")
        wait_file "$ready" 5 "$!" || { diag_file "$E2E_TMP/echo-$1.log"; bail "echo server in $1 did not start"; }
}

_lg_check_to() {
        local a next=
        for a in "$@"; do
                [ "$next" = 1 ] && _need_addr "$(_host_of "$a")"
                next=
                [ "$a" = --to ] && next=1
        done
}

# lg NS UID ARGS...: runs loadgen in NS as UID (0: root, the application; 1337: the proxy's
# UID, which the capture rules do not redirect outbound), in the foreground; prints its summary.
lg() {
        local n=$1 u=$2
        shift 2
        _lg_check_to "$@"
        if [ "$u" = 0 ]; then
                in_ns "$n" "$LOADGEN" "$@" 2>>"$E2E_TMP/loadgen-stderr.log"
        else
                in_ns "$n" setpriv --reuid="$u" --regid="$u" --clear-groups "$LOADGEN" "$@" \
                        2>>"$E2E_TMP/loadgen-stderr.log"
        fi
}

# lg_bg NAME NS ARGS...: runs loadgen in NS as root in the background; LG_PID[NAME] is its pid,
# its summary goes to $E2E_TMP/NAME.out.
declare -A LG_PID
lg_bg() {
        local name=$1 n=$2
        shift 2
        _lg_check_to "$@"
        ip netns exec "$(ns "$n")" "$LOADGEN" "$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" \
                {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        LG_PID[$name]=$!
        E2E_PIDS+=("$!")
}

# hold_start NAME NS N TO: N connections held open from NS to TO (until SIGTERM, at most 120 s);
# waits (10 s) until all are established and echoed. One subtest.
hold_start() {
        local name=$1 n=$2 count=$3 to=$4 ready="$E2E_TMP/ready/$1"
        rm -f "$ready"
        lg_bg "$name" "$n" hold --to "$to" --conns "$count" --payload 2048 --hold-seconds 120 --timeout 5 \
                --max-seconds 10 --ready-file "$ready"
        if ! wait_file "$ready" 12 "${LG_PID[$name]}"; then
                not_ok "$SCEN: $count connection(s) from $n to $to are established and held"
                diag_file "$E2E_TMP/$name.err"
                return 1
        fi
        assert_eq "$SCEN: $count connection(s) from $n to $to are established, echoed and held" \
                "$(cat "$ready")" "established=$count failed=0"
}

# wait_exit PID SECONDS: waits until PID has exited, at most SECONDS; then EXIT_RC is its exit
# status and EXIT_MS the time waited, or EXIT_RC=running.
wait_exit() {
        local pid=$1 start end
        start=$(now_ms)
        end=$((start + $2 * 1000))
        while kill -0 "$pid" 2>/dev/null; do
                if [ "$(now_ms)" -ge "$end" ]; then
                        EXIT_RC=running
                        EXIT_MS=$(($(now_ms) - start))
                        return 1
                fi
                sleep 0.02
        done
        EXIT_MS=$(($(now_ms) - start))
        wait "$pid"
        EXIT_RC=$?
}

# lg_finish NAME SECONDS: sends SIGTERM to a background loadgen (hold: let go) unless it has
# ended, waits for it (bounded) and prints its summary line.
lg_finish() {
        kill -TERM "${LG_PID[$1]}" 2>/dev/null
        lg_wait "$@"
}

# lg_wait NAME SECONDS: waits for a background loadgen to end by itself (bounded; then it is
# killed) and prints its summary line.
lg_wait() {
        local pid=${LG_PID[$1]}
        if ! wait_exit "$pid" "$2"; then
                kill -KILL "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
        fi
        cat "$E2E_TMP/$1.out"
}

# pods: fresh pods A and B with the capture rules and an echo server in B.
pods() {
        e2e_reset
        PROXY_PID=()
        LG_PID=()
        netns_new a
        netns_new b
        veth_pair a eth0 b eth0
        addr_add a eth0 198.18.0.1/24
        addr_add b eth0 198.18.0.2/24
        pf_iptables a "$BACKEND" "${REF[@]}" || bail "capture rules in pod A"
        pf_iptables b "$BACKEND" "${REF[@]}" || bail "capture rules in pod B"
        echo_start b
}

e2e_backends
[ ${#E2E_BACKENDS[@]} -gt 0 ] || bail "no iptables backend available"
BACKEND=${E2E_BACKENDS[0]}

# ---------------------------------------------------------------------------------------------
# 1. SIGTERM to B under load

SCEN="SIGTERM"
pods
proxy_start a
proxy_start b --drain-duration 30s
PB=${PROXY_PID[b]}
res=$(lg a 1337 churn --to 198.18.0.2:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN control: before the drain, a connection straight to B (uid 1337 in A) is served through B's inbound listener" \
        "$(kv ok "$res")" 3 || diag "$res"
hold_start held a 4 198.18.0.2:7000
lg_bg rate a rate --to 198.18.0.2:7000 --seconds 6 --concurrency 8 --gap-ms 300 --pause-ms 20 --payload 256 --timeout 5
sleep 2
assert_eq "$SCEN control: B answers 200 on /healthz/ready before the drain" \
        "$(http_code b GET http://127.0.0.1:15021/healthz/ready)" 200
kill -USR1 "${LG_PID[rate]}"
kill -TERM "$PB"
t_term=$(now_ms)
code=
while [ $(($(now_ms) - t_term)) -lt 2000 ]; do
        code=$(http_code b GET http://127.0.0.1:15021/healthz/ready)
        [ "$code" = 503 ] && break
        sleep 0.02
done
t_503=$(($(now_ms) - t_term))
assert_eq "$SCEN: B's /healthz/ready (15021) turns 503 at once (after $t_503 ms)" "$code" 503
[ "$code" = 503 ] && [ "$t_503" -ge 1000 ] && not_ok "$SCEN: ... but 503 took $t_503 ms, not 'at once' (< 1 s)"
assert_eq "$SCEN: B's /healthz/ready on the status port (15020) is 503 too" \
        "$(http_code b GET http://127.0.0.1:15020/healthz/ready)" 503
deadline=$((SECONDS + 2))
while listening b 15006 && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.02; done
check_fails "$SCEN: B's inbound listener (15006) is closed" listening b 15006
check "$SCEN: B's outbound listener (15001) is still open" listening b 15001
res=$(lg a 1337 churn --to 198.18.0.2:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN: a new connection straight to B (uid 1337 in A) is refused: the capture rule sends it to the closed 15006" \
        "$(kv ok "$res") $(kv err_connect "$res")" "0 3" || diag "$res"
res=$(lg a 0 churn --to 198.18.0.2:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN: a new connection from A's application through A's proxy to B is not served" \
        "$(kv ok "$res")" 0 || diag "$res"
# The load's connections that were mid-exchange finish within their 300 ms gap; then the held
# ones are all that is left.
deadline=$((SECONDS + 3))
while [ "$(connections_count b)" != 4 ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
check "$SCEN: B is still running while connections opened before the drain are open" kill -0 "$PB"
assert_eq "$SCEN: B's GET /connections still lists the 4 held connections" "$(connections_count b)" 4

res=$(lg_finish held 15)
t_release=$(now_ms)
diag "held: $res"
assert_eq "$SCEN: the 4 connections held since before the drain still echo when let go, and close cleanly" \
        "$(kv ok "$res") $(kv failed "$res")" "4 0"
if wait_exit "$PB" 5; then
        since_release=$(($(now_ms) - t_release))
        assert_eq "$SCEN: B exits 0 after the drain" "$EXIT_RC" 0
        if [ "$since_release" -lt 3000 ]; then
                ok "$SCEN: B exits once its last connection closed ($since_release ms later, $(($(now_ms) - t_term)) ms after SIGTERM; --drain-duration is 30 s)"
        else
                not_ok "$SCEN: B exits once its last connection closed (took $since_release ms)"
        fi
else
        not_ok "$SCEN: B exits within 5 s of its last connection closing (still running; --drain-duration 30s)"
        diag_file "$E2E_TMP/proxy-b.log" "proxy b"
fi
res=$(lg_wait rate 20)
diag "rate: $res"
assert_eq "$SCEN: the load ran and saw the drain mark" "$(kv marked "$res")" 1
ok_before=$(($(kv ok "$res") - $(kv ok_after_mark "$res")))
if [ "$ok_before" -gt 0 ]; then
        ok "$SCEN: the load was served before the drain ($ok_before connections)"
else
        not_ok "$SCEN: the load was served before the drain ($ok_before connections)"
fi
assert_eq "$SCEN: no connection of the load failed before the drain" "$(kv failed_before_mark "$res")" 0
assert_eq "$SCEN: every connection of the load relayed end to end (first echo back) completed, drain or not" \
        "$(kv established_failed "$res")" 0
straddled=$(kv straddled "$res")
if [ "${straddled:-0}" -gt 0 ]; then
        ok "$SCEN: connections were mid-exchange when the drain began ($straddled)"
else
        not_ok "$SCEN: connections were mid-exchange when the drain began (none: the scenario proved nothing)"
fi
assert_eq "$SCEN: each of those completed its exchange" "$(kv straddled_ok "$res")" "$straddled"
fa=$(kv failed_after_mark "$res")
if [ "${fa:-0}" -gt 0 ]; then
        ok "$SCEN: the load's new connections after the drain were not served ($fa)"
else
        not_ok "$SCEN: the load's new connections after the drain were not served (all were)"
fi
check "$SCEN: A's proxy is unaffected (200 on /healthz/ready)" \
        test "$(http_code a GET http://127.0.0.1:15021/healthz/ready)" = 200

# ---------------------------------------------------------------------------------------------
# 2. --drain-duration 2s with a connection held open

SCEN="drain-duration"
pods
proxy_start a
proxy_start b --drain-duration 2s
PB=${PROXY_PID[b]}
hold_start forever a 1 198.18.0.2:7000
kill -TERM "$PB"
t_term=$(now_ms)
sleep 1
check "$SCEN: 1 s after SIGTERM, B still runs: a connection is open" kill -0 "$PB"
if wait_exit "$PB" 5; then
        took=$(($(now_ms) - t_term))
        assert_eq "$SCEN: B exits 0 when the drain duration is over" "$EXIT_RC" 0
        if [ "$took" -ge 1800 ] && [ "$took" -le 4000 ]; then
                ok "$SCEN: B exits after about 2 s with the connection still open ($took ms)"
        else
                not_ok "$SCEN: B exits after about 2 s with the connection still open (took $took ms)"
        fi
else
        not_ok "$SCEN: B exits within 6 s of SIGTERM with --drain-duration 2s (still running)"
fi
res=$(lg_finish forever 15)
diag "held: $res"
assert_eq "$SCEN: the connection held through the drain is cut when B exits" \
        "$(kv ok "$res") $(kv failed "$res")" "0 1"

# ---------------------------------------------------------------------------------------------
# 3. POST /drain to A: outbound keeps working, inbound is refused

SCEN="POST /drain"
pods
echo_start a
proxy_start a --drain-duration 30s
proxy_start b
PA=${PROXY_PID[a]}
res=$(lg b 0 churn --to 198.18.0.1:7000 --count 5 --concurrency 2 --payload 256 --timeout 3 --max-seconds 10)
assert_eq "$SCEN control: before the drain, connections into A (from B's application) are served" \
        "$(kv ok "$res")" 5 || diag "$res"
res=$(lg b 1337 churn --to 198.18.0.1:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN control: before the drain, a connection straight to A (uid 1337 in B) is served" \
        "$(kv ok "$res")" 3 || diag "$res"
hold_start keep a 1 198.18.0.2:7000
assert_eq "$SCEN: POST /drain answers 200" "$(http_code a POST http://127.0.0.1:15000/drain)" 200
assert_eq "$SCEN: A's /healthz/ready turns 503" "$(http_code a GET http://127.0.0.1:15021/healthz/ready)" 503
deadline=$((SECONDS + 2))
while listening a 15006 && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.02; done
check_fails "$SCEN: A's inbound listener (15006) is closed" listening a 15006
check "$SCEN: A's outbound listener (15001) is still open" listening a 15001
res=$(lg a 0 churn --to 198.18.0.2:7000 --count 20 --concurrency 4 --payload 1024 --timeout 3 --max-seconds 10)
assert_eq "$SCEN: new outbound connections from A keep working during the drain" \
        "$(kv ok "$res") $(kv failed "$res")" "20 0" || diag "$res"
res=$(lg b 1337 churn --to 198.18.0.1:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN: a new connection straight to A (uid 1337 in B) is refused" \
        "$(kv ok "$res") $(kv err_connect "$res")" "0 3" || diag "$res"
res=$(lg b 0 churn --to 198.18.0.1:7000 --count 3 --concurrency 1 --payload 64 --timeout 3 --max-seconds 10)
assert_eq "$SCEN: a new connection into A from B's application is not served" "$(kv ok "$res")" 0 || diag "$res"
check "$SCEN: A is still running while its held outbound connection is open" kill -0 "$PA"
res=$(lg_finish keep 15)
t_release=$(now_ms)
assert_eq "$SCEN: the held outbound connection still echoes when let go, and closes cleanly" \
        "$(kv ok "$res") $(kv failed "$res")" "1 0" || diag "$res"
if wait_exit "$PA" 5; then
        assert_eq "$SCEN: A exits 0" "$EXIT_RC" 0
        since_release=$(($(now_ms) - t_release))
        if [ "$since_release" -lt 3000 ]; then
                ok "$SCEN: A exits once its last connection closed ($since_release ms later; --drain-duration is 30 s)"
        else
                not_ok "$SCEN: A exits once its last connection closed (took $since_release ms)"
        fi
else
        not_ok "$SCEN: A exits within 5 s of its last connection closing (still running)"
        diag_file "$E2E_TMP/proxy-a.log" "proxy a"
fi

# ---------------------------------------------------------------------------------------------
# 4. POST /quitquitquit with connections open

SCEN="POST /quitquitquit"
pods
proxy_start a
proxy_start b --drain-duration 30s
PB=${PROXY_PID[b]}
hold_start cut a 3 198.18.0.2:7000
assert_eq "$SCEN: B lists the 3 open connections" "$(connections_count b)" 3
assert_eq "$SCEN: POST /quitquitquit answers 200" "$(http_code b POST http://127.0.0.1:15000/quitquitquit)" 200
if wait_exit "$PB" 1; then
        assert_eq "$SCEN: B exits 0" "$EXIT_RC" 0
        ok "$SCEN: B exits at once although 3 connections are open ($EXIT_MS ms)"
else
        not_ok "$SCEN: B exits within 1 s although 3 connections are open (still running)"
fi
res=$(lg_finish cut 15)
assert_eq "$SCEN: the open connections are cut" "$(kv ok "$res") $(kv failed "$res")" "0 3" || diag "$res"
