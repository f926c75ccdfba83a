#!/usr/bin/env bash
#
# 0101-proxy-tproxy: the inbound side in TPROXY mode (docs/cli/proxy.md "Inbound"), IPv4 and
# IPv6.
#
#   pod a  eth0 198.18.0.1/24, 2001:2::1/64 ---- veth ---- eth0 198.18.0.2/24, 2001:2::2/64  pod b
#          -m REDIRECT rules + pilotfish proxy             -m TPROXY rules + pilotfish proxy
#          curl (uid 0)                                    --inbound-interception-mode TPROXY,
#                                                          CAP_NET_ADMIN; nginx on :80
#
# In b nothing is NATed on the way in: the mangle table marks the connection, policy routing
# delivers it locally, and b's transparent 15006 listener accepts it with nginx's address as its
# local address, which is where the proxy reads the original destination from. The test proves:
#   - without CAP_NET_ADMIN the proxy refuses to start in TPROXY mode and says why;
#   - a 5 MiB GET and a 5 MiB PUT (then read back) cross both proxies whole (sha256);
#   - nginx saw every request from 127.0.0.6 (::6), the passthrough source;
#   - b's metrics count the connections as reporter="destination" to nginx's address, and its
#     GET /connections shows that original destination for a connection in progress;
#   - SIGTERM stops both proxies with exit 0 (no sanitizer report with the ASan build).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl nginx sha256sum jq
pf_backend

MIB5=$((5 * 1024 * 1024))
head -c "$MIB5" /dev/urandom >"$E2E_TMP/big.bin" || bail "cannot write $E2E_TMP/big.bin"

scenario() {
        local f=$1 host svc listen peer client v6=() t="TPROXY IPv$1" www out pid conns deadline pid_a pid_b
        if [ "$f" = 4 ]; then
                host=$PF_PODB svc="$PF_PODB:80" listen="$PF_PODB:80" peer=127.0.0.6 client=$PF_PODA
        else
                host="[$PF_PODB6]" svc="[$PF_PODB6]:80" listen="[$PF_PODB6]:80" peer=::6 client="[$PF_PODA6]"
                v6=(--ipv6=true)
        fi
        e2e_reset
        pods_new "$f"
        apply_rules "$t pod a (REDIRECT)" a "$PF_BACKEND" "${PF_CAPTURE[@]}" "${v6[@]}" || return 1
        apply_rules "$t pod b (TPROXY)" b "$PF_BACKEND" -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x '' \
                -b '*' -d 15090,15021,15020 "${v6[@]}" || return 1
        proxy_start a "proxy-a$f" -- sidecar --workers 2 || bail "$t: the proxy in pod a did not start"
        pid_a=$PF_PID

        if [ "$f" = 4 ]; then
                # Without the capability, the transparent listener cannot be opened.
                proxy_start b "proxy-b-nocap" --no-wait -- sidecar --workers 2 --inbound-interception-mode TPROXY
                wait_exit "$PF_PID" 10
                out=$(cat "$E2E_TMP/proxy-b-nocap.log")
                assert_eq "$t: without CAP_NET_ADMIN the proxy exits 1 in TPROXY mode" "$PF_RC" 1
                assert_contains "$t: ... and says the transparent listener needs CAP_NET_ADMIN" "$out" "CAP_NET_ADMIN"
        fi
        proxy_start b "proxy-b$f" --caps +net_admin -- sidecar --workers 2 --inbound-interception-mode TPROXY ||
                bail "$t: the proxy in pod b did not start"
        pid_b=$PF_PID
        assert_contains "$t: pod b's proxy says it runs its inbound side in TPROXY mode" \
                "$(cat "$E2E_TMP/proxy-b$f.log")" "(TPROXY)"
        nginx_start b "web$f" "$listen"
        www="$E2E_TMP/web$f/www"
        { cp "$E2E_TMP/big.bin" "$www/big.bin" && chmod 0644 "$www/big.bin"; } || bail "cannot copy big.bin"

        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -o "$E2E_TMP/got$f.bin" -w '%{http_code} %{size_download}' \
                "http://$host/big.bin" 2>&1)
        assert_eq "$t: GET of 5 MiB: 200 and every byte" "$out" "200 $MIB5"
        assert_eq "$t: GET: same sha256 as nginx's file" "$(sha "$E2E_TMP/got$f.bin")" "$(sha "$E2E_TMP/big.bin")"
        head -c "$MIB5" /dev/urandom >"$E2E_TMP/up$f.bin"
        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -H 'Expect:' -T "$E2E_TMP/up$f.bin" -o /dev/null \
                -w '%{http_code} %{size_upload}' "http://$host/up/put.bin" 2>&1)
        assert_eq "$t: PUT of 5 MiB: 201 and every byte sent" "$out" "201 $MIB5"
        assert_eq "$t: PUT: the stored file has the upload's sha256" \
                "$(sha "$www/up/put.bin" 2>&1)" "$(sha "$E2E_TMP/up$f.bin")"
        out=$(in_ns a "${PF_CURL[@]}" --max-time 30 -o "$E2E_TMP/back$f.bin" -w '%{http_code}' \
                "http://$host/up/put.bin" 2>&1)
        assert_eq "$t: GET of the upload back: 200, same sha256" \
                "$out $(sha "$E2E_TMP/back$f.bin")" "200 $(sha "$E2E_TMP/up$f.bin")"

        out=$(cat "$E2E_TMP/web$f/access.log")
        assert_eq "$t: nginx logged the 3 requests" "$(grep -c . <<<"$out")" 3
        assert_eq "$t: nginx saw every request come from $peer" "$(awk '{ print $1 }' <<<"$out" | sort -u)" "$peer"

        out=$(wait_metric b istio_tcp_connections_closed_total 3 5 'reporter="destination"' "destination_service=\"$svc\"" 'response_flags="-"')
        assert_eq "$t: pod b counts 3 relayed connections: reporter=\"destination\", destination_service=\"$svc\", response_flags=\"-\"" "$out" 3
        out=$(metric_sum "$(metrics b)" istio_tcp_received_bytes_total 'reporter="destination"' "destination_service=\"$svc\"")
        if [[ "$out" =~ ^[0-9]+$ ]] && [ "$out" -ge "$MIB5" ] && [ "$out" -le $((MIB5 + 65536)) ]; then
                ok "$t: pod b: received_bytes within [5 MiB, 5 MiB + 64 KiB]"
        else
                not_ok "$t: pod b: received_bytes within [5 MiB, 5 MiB + 64 KiB]"
                diag "got [$out]"
        fi

        # A connection in progress: its original destination is the transparent socket's address.
        # One exec chain, so that $! is curl itself and killing it closes its socket.
        ip netns exec "$(ns a)" "${PF_CURL[@]}" --max-time 30 --limit-rate 20k -o /dev/null "http://$host/big.bin" \
                {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        deadline=$((SECONDS + 5))
        while :; do
                conns=$(in_ns b "${PF_CURL[@]}" http://127.0.0.1:15000/connections 2>&1)
                out=$(jq -r '.connections[] | "\(.direction) \(.client | sub(":[0-9]+$"; ":*")) \(.original_dst)"' \
                        <<<"$conns" 2>&1)
                [ -n "$out" ] || [ "$SECONDS" -ge "$deadline" ] && break
                sleep 0.1
        done
        assert_eq "$t: pod b: /connections shows the download as inbound from $client to $svc" \
                "$out" "inbound $client:* $svc"
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        out=$(wait_metric b pilotfish_active_connections 0 5)
        assert_eq "$t: pod b: once curl is gone no relay is left (pilotfish_active_connections 0)" "$out" 0
        proxy_stop "$pid_a" "proxy-a$f" "$t: pod a: SIGTERM: the proxy exits 0, cleanly"
        proxy_stop "$pid_b" "proxy-b$f" "$t: pod b: SIGTERM: the proxy exits 0, cleanly"
}

scenario 4
scenario 6
