#!/usr/bin/env bash
#
# 0102-proxy-tcp: TCP faithfulness through two sidecars (docs/cli/proxy.md "Relay" and
# "Outbound"): half-closes, resets, refused and unanswered upstreams, and a connection to the
# proxy's own listener.
#
#   pod a  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  pod b
#          capture rules (REDIRECT)          capture rules, except inbound port 9 (-d ...,9)
#          pilotfish proxy                   pilotfish proxy
#          probe connect (uid 0)             probe listeners (uid 0) on 198.18.0.2:
#                                              7 --echo-after-eof, 17 and 18 --echo,
#                                              27 --shut-first, 8 --linger0, 80,
#                                              37 --echo --stall 4000
#                                            nothing on 9 or 19; 9999 dropped in filter INPUT;
#                                            9998 dropped in raw PREROUTING (before any capture)
#
# Both proxies run with --connect-timeout 1s. The test proves:
#   - a half-close crosses both proxies: the client sends 1 MiB and shuts down writing; the
#     server answers only after it has seen that FIN, and the client still receives the whole
#     1 MiB back (sha256); the mirror image (the server sends its FIN first, the client then
#     sends 1 MiB) delivers every byte too; a request followed at once by the client's FIN still
#     gets its reply; and 8 MiB echoed while being sent arrive whole;
#   - backpressure: while a server reads nothing for 4 s, the client's 64 MiB stop in the
#     kernel's buffers: what each proxy passes on levels off (under 32/48 MiB) and neither
#     proxy's RSS grows by 8 MiB; then all 64 MiB arrive and come back intact; bulk bytes were
#     spliced and small ones copied;
#   - a server's reset reaches the client as ECONNRESET, not as a FIN; a client's reset reaches
#     the server as ECONNRESET;
#   - an upstream that refuses (port 9: a's proxy connects straight to b's kernel) resets the
#     client at once, and a's metrics count response_flags="UF" and
#     pilotfish_connect_failures_total{cause="refused"}; the same refusal one hop further (port
#     19: b's proxy is refused by b's kernel) resets the client too, counted in b;
#   - an upstream that never answers resets the client after the connect timeout (>= 0.9 s and
#     < 5 s), counted as cause="timeout", whether b's proxy (9999) or a's (9998) is the one
#     waiting;
#   - a connection to the proxy's own listener (198.18.0.1:15001, 198.18.0.1:15006) is reset
#     with response_flags="NR" and is not relayed to itself: exactly one connection is counted
#     per attempt and the proxy still relays afterwards;
#   - after all of that, SIGTERM stops both proxies with exit 0 (no sanitizer report with the
#     ASan build).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need sha256sum curl
pf_backend

B=$PF_PODB
MIB=$((1024 * 1024))

# elapsed_between DESC OUTPUT LOW HIGH: the elapsed_ms=N in probe's OUTPUT is in [LOW, HIGH).
elapsed_between() {
        local desc=$1 out=$2 lo=$3 hi=$4 ms
        ms=$(grep -o 'elapsed_ms=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
        if [ -n "$ms" ] && [ "$ms" -ge "$lo" ] && [ "$ms" -lt "$hi" ]; then
                ok "$desc ($ms ms)"
        else
                not_ok "$desc"
                diag "elapsed_ms [$ms], want $lo <= ms < $hi; probe said:"
                diag "$out"
                return 1
        fi
}

# expect_reset DESC NS ARGS...: probe connect ARGS --expect-reset succeeds; prints its output.
expect_reset() {
        local desc=$1 n=$2 out
        shift 2
        if out=$(probe_connect "$n" 0 --expect-reset "$@"); then
                ok "$desc"
        else
                not_ok "$desc"
                diag "probe connect $* --expect-reset (in $n):"
                diag "$out"
        fi
        PF_OUT=$out
}

pods_new 4
apply_rules "pod a" a "$PF_BACKEND" "${PF_CAPTURE[@]}" || bail "capture rules in pod a"
apply_rules "pod b" b "$PF_BACKEND" -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' \
        -d 15090,15021,15020,9 || bail "capture rules in pod b"
# Blackholes, after the capture rules. In filter INPUT the inbound capture has already turned a
# connection from a into one to 15006, so this DROP only catches b's proxy's own connect to the
# app port; in raw PREROUTING, before NAT, the SYN from a is dropped as it arrives.
must in_ns b "iptables-$PF_BACKEND" -A INPUT -p tcp --dport 9999 -j DROP
must in_ns b "iptables-$PF_BACKEND" -t raw -A PREROUTING -i eth0 -p tcp --dport 9998 -j DROP
declare -A PID
for n in a b; do
        proxy_start "$n" "proxy-$n" -- sidecar --workers 2 --connect-timeout 1s ||
                bail "the proxy in pod $n did not start"
        PID[$n]=$PF_PID
done
probe_listen b 0 echo-eof --addr $B --port 7 --echo-after-eof
probe_listen b 0 echo --addr $B --port 17 --echo
probe_listen b 0 echo-rst --addr $B --port 18 --echo
probe_listen b 0 shut-first --addr $B --port 27 --shut-first
probe_listen b 0 rst --addr $B --port 8 --linger0
probe_listen b 0 app --addr $B --port 80

# --- half-close
head -c "$MIB" /dev/urandom >"$E2E_TMP/1m.bin"
out=$(probe_connect a 0 --to $B:7 --send-file "$E2E_TMP/1m.bin" --recv-file "$E2E_TMP/1m.back" \
        --shutdown-write --timeout 10)
assert_match "half-close: the client sent 1 MiB, shut down writing, and got 1 MiB back, then EOF" \
        "$out" "^done .* sent=$MIB received=$MIB .* end=eof\$"
assert_eq "half-close: what came back has the sha256 of what was sent" \
        "$(sha "$E2E_TMP/1m.back" 2>&1)" "$(sha "$E2E_TMP/1m.bin")"
out=$(wait_log "$E2E_TMP/echo-eof.log" "^done .* received=$MIB " 5)
assert_match "half-close: the server read 1 MiB then the client's FIN (end=eof) before answering" \
        "$out" "^done name=echo-eof peer=127\.0\.0\.6:[0-9]+ received=$MIB sent=$MIB end=eof\$"

out=$(probe_connect a 0 --to $B:27 --send-file "$E2E_TMP/1m.bin" --shutdown-write --timeout 10)
assert_match "reverse half-close: the server answered and shut down first; the client still sent its 1 MiB" \
        "$out" "^done .* sent=$MIB received=[1-9][0-9]* .* end=eof\$"
out=$(wait_log "$E2E_TMP/shut-first.log" "^done " 5)
assert_match "reverse half-close: the server, after its own FIN, received the whole 1 MiB and then the client's FIN" \
        "$out" "^done name=shut-first peer=127\.0\.0\.6:[0-9]+ received=$MIB sent=[0-9]+ end=eof\$"
expect_conn "early FIN: a client that shuts down writing right after its request still gets the reply" \
        a 0 "name=app local=$B:80 peer=127.0.0.6:*" --to $B:80 --shutdown-write

head -c $((8 * MIB)) /dev/urandom >"$E2E_TMP/8m.bin"
out=$(probe_connect a 0 --to $B:17 --send-file "$E2E_TMP/8m.bin" --recv-file "$E2E_TMP/8m.back" \
        --shutdown-write --timeout 20)
assert_match "full duplex: 8 MiB echoed while being sent all come back" \
        "$out" "^done .* sent=$((8 * MIB)) received=$((8 * MIB)) .* end=eof\$"
assert_eq "full duplex: same sha256" "$(sha "$E2E_TMP/8m.back" 2>&1)" "$(sha "$E2E_TMP/8m.bin")"

# --- backpressure: a server that reads nothing for 4 s while the client sends 64 MiB
# relayed_bytes NS: the client-to-upstream bytes of NS's proxy's connections to $B:37.
relayed_bytes() {
        metrics "$1" 15000 /connections |
                jq --arg d "$B:37" '[.connections[] | select(.original_dst == $d) | .bytes_received] | add // 0'
}
vmrss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
head -c $((64 * MIB)) /dev/urandom >"$E2E_TMP/64m.bin"
rss_a=$(vmrss "${PID[a]}")
rss_b=$(vmrss "${PID[b]}")
probe_listen b 0 stall --addr $B --port 37 --echo --stall 4000
probe_connect a 0 --to $B:37 --send-file "$E2E_TMP/64m.bin" --recv-file "$E2E_TMP/64m.back" \
        --shutdown-write --timeout 30 >"$E2E_TMP/stall.out" &
cpid=$!
wait_log "$E2E_TMP/stall.log" "^stall " 5 >/dev/null || diag "the stalling server never accepted"
# Once every buffer on the way is full, what each proxy has passed on stops growing.
prev=-1
for _ in $(seq 30); do
        sleep 0.2
        now="$(relayed_bytes a) $(relayed_bytes b)"
        [ "$now" = "$prev" ] && break
        prev=$now
done
read -r got_a got_b <<<"$now"
if [ "$now" = "$prev" ] && [ "$got_b" -gt 0 ] && [ "$got_b" -lt $((32 * MIB)) ] && [ "$got_a" -lt $((48 * MIB)) ]; then
        ok "backpressure: with the server not reading, the proxies stop taking the client's 64 MiB (a passed $got_a bytes, b $got_b)"
else
        not_ok "backpressure: with the server not reading, the proxies stop taking the client's 64 MiB"
        diag "bytes passed on (a b): last [$now], before [$prev]; want both steady, b < 32 MiB, a < 48 MiB"
fi
grow_a=$(($(vmrss "${PID[a]}") - rss_a))
grow_b=$(($(vmrss "${PID[b]}") - rss_b))
if [ "$grow_a" -lt 8192 ] && [ "$grow_b" -lt 8192 ]; then
        ok "backpressure: neither proxy buffers the backlog in its memory (RSS +$grow_a KiB, +$grow_b KiB)"
else
        not_ok "backpressure: neither proxy buffers the backlog in its memory"
        diag "RSS grew by $grow_a KiB (a) and $grow_b KiB (b) while stalled; want < 8 MiB"
fi
wait "$cpid"
out=$(cat "$E2E_TMP/stall.out")
assert_match "backpressure: once the server reads, all 64 MiB go there and back" \
        "$out" "^done .* sent=$((64 * MIB)) received=$((64 * MIB)) .* end=eof\$"
assert_eq "backpressure: same sha256" "$(sha "$E2E_TMP/64m.back" 2>&1)" "$(sha "$E2E_TMP/64m.bin")"
rm -f "$E2E_TMP/64m.bin" "$E2E_TMP/64m.back"
ma=$(metrics a)
if [ "$(metric_sum "$ma" pilotfish_bytes_spliced_total)" -gt $((64 * MIB)) ] &&
   [ "$(metric_sum "$ma" pilotfish_bytes_copied_total)" -gt 0 ]; then
        ok "bulk transfers are spliced, small messages copied (pilotfish_bytes_spliced_total, _copied_total)"
else
        not_ok "bulk transfers are spliced, small messages copied"
        diag "$(grep -E '^pilotfish_bytes_(spliced|copied)' <<<"$ma")"
fi

# --- resets, both ways
expect_reset "a server's reset (SO_LINGER 0) reaches the client as ECONNRESET, not a FIN" a --to $B:8
out=$(wait_log "$E2E_TMP/rst.log" "^done .*closed=reset" 2)
assert_match "... and it was the server behind both proxies that reset (peer 127.0.0.6)" \
        "$out" "^done name=rst peer=127\.0\.0\.6:"
out=$(probe_connect a 0 --to $B:18 --linger0)
assert_match "client reset: the exchange with the echo server works first" "$out" "^connected .* reply=hello from "
out=$(wait_log "$E2E_TMP/echo-rst.log" "^done " 5)
assert_match "a client's reset (SO_LINGER 0) reaches the server as ECONNRESET, not a FIN" \
        "$out" "^done name=echo-rst peer=127\.0\.0\.6:[0-9]+ .* end=ECONNRESET\$"

# --- refused upstreams
expect_reset "refused: nothing on $B:9 (not captured in b): the client is reset" a --to $B:9
elapsed_between "refused: the reset comes at once, well under the 1 s connect timeout" "$PF_OUT" 0 500
out=$(wait_metric a istio_tcp_connections_opened_total 1 5 'reporter="source"' "destination_service=\"$B:9\"" \
        'response_flags="UF"')
assert_eq "refused: pod a counts istio_tcp_connections_opened_total{reporter=\"source\",destination_service=\"$B:9\",response_flags=\"UF\"} 1" \
        "$out" 1
ma=$(metrics a)
assert_eq "refused: ... and its closed_total, with the same labels, is 1" \
        "$(metric_sum "$ma" istio_tcp_connections_closed_total 'reporter="source"' "destination_service=\"$B:9\"" 'response_flags="UF"')" 1
assert_eq "refused: pod a counts pilotfish_connect_failures_total{cause=\"refused\"} 1" \
        "$(metric_sum "$ma" pilotfish_connect_failures_total 'cause="refused"')" 1

expect_reset "refused one hop further: nothing on $B:19 (captured in b): the client is reset" a --to $B:19
elapsed_between "refused in b: the reset comes at once" "$PF_OUT" 0 500
out=$(wait_metric b istio_tcp_connections_opened_total 1 5 'reporter="destination"' "destination_service=\"$B:19\"" \
        'response_flags="UF"')
assert_eq "refused in b: pod b counts reporter=\"destination\",destination_service=\"$B:19\",response_flags=\"UF\"" "$out" 1
assert_eq "refused in b: pod b counts pilotfish_connect_failures_total{cause=\"refused\"} 1" \
        "$(metric_sum "$(metrics b)" pilotfish_connect_failures_total 'cause="refused"')" 1

# --- upstreams that never answer: the connect timeout (1 s) ends them
expect_reset "blackhole in b (filter INPUT DROP on 9999): the client is reset" a --to $B:9999 --timeout 10
elapsed_between "blackhole in b: the reset comes after b's 1 s connect timeout, not before, not much after" \
        "$PF_OUT" 900 5000
out=$(wait_metric b pilotfish_connect_failures_total 1 5 'cause="timeout"')
assert_eq "blackhole in b: pod b counts pilotfish_connect_failures_total{cause=\"timeout\"} 1" "$out" 1
assert_eq "blackhole in b: pod b counts destination_service=\"$B:9999\",response_flags=\"UF\"" \
        "$(metric_sum "$(metrics b)" istio_tcp_connections_opened_total 'reporter="destination"' "destination_service=\"$B:9999\"" 'response_flags="UF"')" 1

expect_reset "blackhole before b's capture (raw PREROUTING DROP on 9998): the client is reset" a --to $B:9998 --timeout 10
elapsed_between "blackhole before b: the reset comes after a's 1 s connect timeout" "$PF_OUT" 900 5000
out=$(wait_metric a pilotfish_connect_failures_total 1 5 'cause="timeout"')
assert_eq "blackhole before b: pod a counts pilotfish_connect_failures_total{cause=\"timeout\"} 1" "$out" 1
assert_eq "blackhole before b: pod a counts reporter=\"source\",destination_service=\"$B:9998\",response_flags=\"UF\"" \
        "$(metric_sum "$(metrics a)" istio_tcp_connections_opened_total 'reporter="source"' "destination_service=\"$B:9998\"" 'response_flags="UF"')" 1

# --- the proxy's own listeners as a destination
for port in 15001 15006; do
        before=$(metric_sum "$(metrics a)" istio_tcp_connections_opened_total)
        expect_reset "self: pod a's app to its own $PF_PODA:$port (its proxy's listener) is reset" a \
                --to $PF_PODA:$port
        elapsed_between "self: ... at once" "$PF_OUT" 0 500
        p=source
        [ "$port" = 15006 ] && p=destination
        out=$(wait_metric a istio_tcp_connections_opened_total 1 5 "reporter=\"$p\"" \
                "destination_service=\"$PF_PODA:$port\"" 'response_flags="NR"')
        assert_eq "self: pod a counts reporter=\"$p\",destination_service=\"$PF_PODA:$port\",response_flags=\"NR\" 1" "$out" 1
        sleep 0.2
        ma=$(metrics a)
        assert_eq "self: no loop: exactly one more connection counted in pod a, not a chain of them" \
                "$(metric_sum "$ma" istio_tcp_connections_opened_total)" $((before + 1))
done
assert_eq "self: no relay is left open in pod a (pilotfish_active_connections)" \
        "$(metric_sum "$ma" pilotfish_active_connections)" 0
assert_eq "self: pod a's proxy is still ready" "$(http_code a http://127.0.0.1:15021/healthz/ready)" 200
expect_conn "self: pod a's proxy still relays: a connection to $B:80 reaches the app through both proxies" \
        a 0 "name=app local=$B:80 peer=127.0.0.6:*" --to $B:80
for n in a b; do
        proxy_stop "${PID[$n]}" "proxy-$n" "pod $n: SIGTERM: the proxy exits 0, cleanly"
done
