#!/usr/bin/env bash
#
# 0100-proxy-http: real HTTP through two sidecars (docs/cli/proxy.md), REDIRECT mode, IPv4 and
# IPv6.
#
#   pod a  eth0 198.18.0.1/24, 2001:2::1/64 ---- veth ---- eth0 198.18.0.2/24, 2001:2::2/64  pod b
#          capture rules + pilotfish proxy                 capture rules + pilotfish proxy
#          curl (uid 0)                                    nginx on 198.18.0.2:80 / [2001:2::2]:80
#
# curl in a fetches and uploads 5 MiB from nginx in b: the connection is captured in a (to a's
# 15001), relayed to b, captured there (to b's 15006) and relayed to nginx from 127.0.0.6 (::6).
# The test proves:
#   - both transfers arrive whole (sha256 of what was sent and what was stored or received);
#   - nginx saw every request from 127.0.0.6 (::6), so the inbound hop went through b's proxy (a
#     bypass would show a's address);
#   - a's metrics count the connections with reporter="source", b's with reporter="destination",
#     both with destination_service = nginx's address and no response flag, so the outbound hop
#     went through a's proxy; their byte counters equal exactly what nginx says it received and
#     sent (and so lie within [body, body + 64 KiB]), and a's equal b's;
#   - promtool accepts both scrapes; /healthz/ready is 200 on 15021 and 15020;
#   - GET /connections on the admin port is valid JSON listing a slow download while it runs;
#   - once it is gone no relay is left, and SIGTERM stops each proxy with exit 0 (and no
#     sanitizer report, when run with the ASan build).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl nginx sha256sum promtool jq
pf_backend

MIB5=$((5 * 1024 * 1024))
SLACK=$((64 * 1024))
head -c "$MIB5" /dev/urandom >"$E2E_TMP/big.bin" || bail "cannot write $E2E_TMP/big.bin"

# between DESC VALUE LOW HIGH: one subtest, LOW <= VALUE <= HIGH (integers).
between() {
        local desc=$1 v=$2 lo=$3 hi=$4
        if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "got [$v], want $lo..$hi"
                return 1
        fi
}

# scenario FAMILY: everything above, for IPv4 (4) or IPv6 (6).
scenario() {
        local f=$1 host svc listen peer client v6=() t=IPv$1 www out n p port
        local ma mb sa ra sb rb nsent nrecv conns pid pid_a pid_b deadline ca cb
        if [ "$f" = 4 ]; then
                host=$PF_PODB svc="$PF_PODB:80" listen="$PF_PODB:80" peer=127.0.0.6 client=$PF_PODA
        else
                host="[$PF_PODB6]" svc="[$PF_PODB6]:80" listen="[$PF_PODB6]:80" peer=::6
                client="[$PF_PODA6]"
                v6=(--ipv6=true)
        fi
        e2e_reset
        pods_new "$f"
        apply_rules "$t pod a" a "$PF_BACKEND" "${PF_CAPTURE[@]}" "${v6[@]}" || return 1
        apply_rules "$t pod b" b "$PF_BACKEND" "${PF_CAPTURE[@]}" "${v6[@]}" || return 1
        proxy_start a "proxy-a$f" -- sidecar --workers 2 || bail "$t: the proxy in pod a did not start"
        pid_a=$PF_PID
        proxy_start b "proxy-b$f" -- sidecar --workers 2 || bail "$t: the proxy in pod b did not start"
        pid_b=$PF_PID
        nginx_start b "web$f" "$listen"
        www="$E2E_TMP/web$f/www"
        { cp "$E2E_TMP/big.bin" "$www/big.bin" && chmod 0644 "$www/big.bin"; } || bail "cannot copy big.bin"

        for n in a b; do
                for port in 15021 15020; do
                        assert_eq "$t: pod $n: GET /healthz/ready on :$port is 200" \
                                "$(http_code "$n" "http://127.0.0.1:$port/healthz/ready")" 200
                done
        done

        # --- 5 MiB down, 5 MiB up, 5 MiB down again; one connection each (nginx: no keep-alive).
        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -o "$E2E_TMP/got$f.bin" -w '%{http_code} %{size_download}' \
                "http://$host/big.bin" 2>&1)
        assert_eq "$t: GET of 5 MiB through both proxies: 200 and every byte" "$out" "200 $MIB5"
        assert_eq "$t: GET: what curl received has nginx's file's sha256" \
                "$(sha "$E2E_TMP/got$f.bin")" "$(sha "$E2E_TMP/big.bin")"

        head -c "$MIB5" /dev/urandom >"$E2E_TMP/up$f.bin"
        # "Expect:" off: a 100 Continue would be bytes on the wire that nginx's log does not count.
        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -H 'Expect:' -T "$E2E_TMP/up$f.bin" -o /dev/null \
                -w '%{http_code} %{size_upload}' "http://$host/up/put.bin" 2>&1)
        assert_match "$t: PUT of 5 MiB through both proxies: 201 and every byte sent" "$out" "^201 $MIB5\$"
        assert_eq "$t: PUT: the file nginx stored has the upload's sha256" \
                "$(sha "$www/up/put.bin" 2>&1)" "$(sha "$E2E_TMP/up$f.bin")"
        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -o "$E2E_TMP/back$f.bin" -w '%{http_code} %{size_download}' \
                "http://$host/up/put.bin" 2>&1)
        assert_eq "$t: GET of the uploaded file: 200, 5 MiB" "$out" "200 $MIB5"
        assert_eq "$t: GET of the uploaded file: same sha256 as the upload" \
                "$(sha "$E2E_TMP/back$f.bin")" "$(sha "$E2E_TMP/up$f.bin")"

        # --- nginx's view: three requests, every one from the inbound passthrough address.
        out=$(cat "$E2E_TMP/web$f/access.log")
        assert_eq "$t: nginx logged the 3 requests" "$(grep -c . <<<"$out")" 3
        assert_eq "$t: nginx saw every request come from $peer (b's proxy's passthrough source)" \
                "$(awk '{ print $1 }' <<<"$out" | sort -u)" "$peer"
        nrecv=$(awk '{ s += $5 } END { print s + 0 }' <<<"$out")
        nsent=$(awk '{ s += $6 } END { print s + 0 }' <<<"$out")

        # --- metrics: each proxy counted the 3 connections, from its side, and every byte.
        for n in a b; do
                p=source
                [ "$n" = b ] && p=destination
                out=$(wait_metric "$n" istio_tcp_connections_closed_total 3 5 "reporter=\"$p\"" \
                        "destination_service=\"$svc\"" 'response_flags="-"')
                assert_eq "$t: pod $n: istio_tcp_connections_closed_total{reporter=\"$p\",destination_service=\"$svc\",response_flags=\"-\"} is 3" \
                        "$out" 3
        done
        ma=$(metrics a)
        mb=$(metrics b)
        assert_eq "$t: pod a: istio_tcp_connections_opened_total{reporter=\"source\",destination_service=\"$svc\",response_flags=\"-\"} is 3" \
                "$(metric_sum "$ma" istio_tcp_connections_opened_total 'reporter="source"' "destination_service=\"$svc\"" 'response_flags="-"')" 3
        assert_eq "$t: pod b: istio_tcp_connections_opened_total{reporter=\"destination\",destination_service=\"$svc\",response_flags=\"-\"} is 3" \
                "$(metric_sum "$mb" istio_tcp_connections_opened_total 'reporter="destination"' "destination_service=\"$svc\"" 'response_flags="-"')" 3
        assert_eq "$t: pod a reports nothing as destination, pod b nothing as source" \
                "$(metric_sum "$ma" istio_tcp_connections_opened_total 'reporter="destination"')/$(metric_sum "$mb" istio_tcp_connections_opened_total 'reporter="source"')" \
                "none/none"
        ra=$(metric_sum "$ma" istio_tcp_received_bytes_total 'reporter="source"' "destination_service=\"$svc\"")
        sa=$(metric_sum "$ma" istio_tcp_sent_bytes_total 'reporter="source"' "destination_service=\"$svc\"")
        rb=$(metric_sum "$mb" istio_tcp_received_bytes_total 'reporter="destination"' "destination_service=\"$svc\"")
        sb=$(metric_sum "$mb" istio_tcp_sent_bytes_total 'reporter="destination"' "destination_service=\"$svc\"")
        between "$t: pod a: received_bytes (client to server) within [5 MiB, 5 MiB + 64 KiB]" "$ra" "$MIB5" $((MIB5 + SLACK))
        between "$t: pod a: sent_bytes (server to client) within [10 MiB, 10 MiB + 64 KiB]" "$sa" $((2 * MIB5)) $((2 * MIB5 + SLACK))
        assert_eq "$t: pod a: received_bytes equals nginx's request_length total exactly" "$ra" "$nrecv"
        assert_eq "$t: pod a: sent_bytes equals nginx's bytes_sent total exactly" "$sa" "$nsent"
        assert_eq "$t: pod b counted the same bytes as pod a (received/sent)" "$rb/$sb" "$ra/$sa"
        for n in a b; do
                if out=$(metrics "$n" >"$E2E_TMP/metrics-$n$f.txt" &&
                        promtool check metrics <"$E2E_TMP/metrics-$n$f.txt" 2>&1); then
                        ok "$t: pod $n: promtool check metrics accepts :15090/stats/prometheus"
                else
                        not_ok "$t: pod $n: promtool check metrics accepts :15090/stats/prometheus"
                        diag "$out"
                fi
        done
        out=$(metrics a 15020)
        assert_eq "$t: pod a: :15020/stats/prometheus counts the same connections" \
                "$(metric_sum "$out" istio_tcp_connections_opened_total 'reporter="source"' "destination_service=\"$svc\"" 'response_flags="-"')" 3

        # --- GET /connections lists a download in progress, in both proxies.
        # One exec chain, so that $! is curl itself and killing it closes its socket.
        ip netns exec "$(ns a)" "${PF_CURL[@]}" --max-time 30 --limit-rate 20k -o /dev/null "http://$host/big.bin" \
                {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        deadline=$((SECONDS + 5))
        while :; do
                ca=$(in_ns a "${PF_CURL[@]}" http://127.0.0.1:15000/connections 2>&1)
                cb=$(in_ns b "${PF_CURL[@]}" http://127.0.0.1:15000/connections 2>&1)
                if jq -e --arg d "$svc" '[.connections[] | select(.original_dst == $d and .bytes_sent > 0)] | length == 1' \
                        >/dev/null 2>&1 <<<"$ca" &&
                        jq -e --arg d "$svc" '[.connections[] | select(.original_dst == $d and .bytes_sent > 0)] | length == 1' \
                                >/dev/null 2>&1 <<<"$cb"; then
                        break
                fi
                [ "$SECONDS" -ge "$deadline" ] && break
                sleep 0.1
        done
        if json_ok "$ca"; then ok "$t: pod a: GET /connections is valid JSON"; else not_ok "$t: pod a: GET /connections is valid JSON"; diag "$ca"; fi
        if json_ok "$cb"; then ok "$t: pod b: GET /connections is valid JSON"; else not_ok "$t: pod b: GET /connections is valid JSON"; diag "$cb"; fi
        # The client's port is curl's (a) or a's proxy's (b): shown as "*".
        conns=$(jq -r --arg d "$svc" '.connections[] | select(.original_dst == $d) |
                "\(.direction) \(.client | sub(":[0-9]+$"; ":*")) \(.original_dst) \(.state) \(.bytes_sent > 0)"' \
                <<<"$ca" 2>&1)
        assert_eq "$t: pod a: /connections lists the download: outbound, from curl, to $svc, bytes flowing" \
                "$conns" "outbound $client:* $svc established true"
        conns=$(jq -r --arg d "$svc" '.connections[] | select(.original_dst == $d) |
                "\(.direction) \(.client | sub(":[0-9]+$"; ":*")) \(.original_dst) \(.state) \(.bytes_sent > 0)"' \
                <<<"$cb" 2>&1)
        assert_eq "$t: pod b: /connections lists it as inbound, from pod a, to $svc" \
                "$conns" "inbound $client:* $svc established true"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        out=$(wait_metric a pilotfish_active_connections 0 5)
        assert_eq "$t: pod a: once curl is gone no relay is left (pilotfish_active_connections 0)" "$out" 0
        proxy_stop "$pid_a" "proxy-a$f" "$t: pod a: SIGTERM: the proxy exits 0, cleanly"
        proxy_stop "$pid_b" "proxy-b$f" "$t: pod b: SIGTERM: the proxy exits 0, cleanly"
}

scenario 4
scenario 6
