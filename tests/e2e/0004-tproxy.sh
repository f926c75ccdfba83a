#!/usr/bin/env bash
#
# 0004-tproxy: inbound capture in TPROXY mode (SEMANTICS.md section 7; section 4 steps 5 and 17).
#
# Same topology as 0003-inbound. The 15006 listener is transparent (IP_TRANSPARENT, run as the
# proxy UID with CAP_NET_ADMIN as Istio's proxy is in this mode), so a captured connection is
# accepted with the original destination as its local address: no NAT is involved.
#
#   client  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  pod
#           listener 80 "client-80"               listeners: 15006 transparent (uid 1337) "inbound"
#                                                            15001 (uid 1337) "outbound"
#                                                            app-P on 8080, 7070, 9999, 15008, 15020, 15021, 15090
#
# A second scenario adds 2001:2:0:1::1/64 (client) and 2001:2:0:1::2/64 (pod) and runs with
# --ipv6=true: IPv6 gets its own policy rule and local route, and its own transparent listener.

. "$(dirname "$0")/lib.sh"
e2e_init

POD=198.18.0.2
APP_PORTS="8080 7070 9999 15008 15020 15021 15090"

setup() {
        local p
        netns_new client
        netns_new pod
        veth_pair client eth0 pod eth0
        addr_add client eth0 198.18.0.1/24
        addr_add pod eth0 $POD/24
        probe_listen client 0 client-80 --port 80
        probe_listen_caps pod "$E2E_PROXY_UID" +net_admin inbound --port 15006 --transparent
        probe_listen pod "$E2E_PROXY_UID" outbound --port 15001
        for p in $APP_PORTS; do
                probe_listen pod 0 "app-$p" --port "$p"
        done
}

POD6=2001:2:0:1::2
CLIENT6=2001:2:0:1::1

setup6() {
        local p
        addr_add client eth0 $CLIENT6/64
        addr_add pod eth0 $POD6/64
        probe_listen_caps pod "$E2E_PROXY_UID" +net_admin inbound6 --addr :: --port 15006 --transparent
        for p in 8080 15021; do
                probe_listen pod 0 "app6-$p" --addr :: --port "$p"
        done
}

e2e_backends
for b in "${E2E_BACKENDS[@]}"; do
        e2e_reset
        setup
        if apply_rules "$b TPROXY" pod "$b" -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x '' \
                -b '*' -d 15090,15021,15020,7070; then
                assert_contains "$b: mangle PREROUTING sends TCP to ISTIO_INBOUND" \
                        "$(rules pod "$b" 4 mangle)" "-A PREROUTING -p tcp -j ISTIO_INBOUND"
                assert_contains "$b: ip rule: fwmark 1337 looks up table 133" \
                        "$(in_ns pod ip -4 rule show)" "fwmark 0x539 lookup 133"
                assert_contains "$b: table 133 delivers everything locally" \
                        "$(in_ns pod ip -4 route show table 133)" "local default dev lo"

                expect_conn "$b: client to $POD:8080 is accepted by the transparent 15006 listener as $POD:8080" \
                        client 0 "name=inbound local=$POD:8080 peer=198.18.0.1:*" --to $POD:8080
                expect_conn "$b: client to $POD:9999 is accepted by 15006 as $POD:9999 (-b '*')" \
                        client 0 "name=inbound local=$POD:9999" --to $POD:9999
                for p in 15090 15021 15020 7070; do
                        expect_conn "$b: client to $POD:$p (-d) reaches the app on $p directly" \
                                client 0 "name=app-$p local=$POD:$p" --to $POD:$p
                done
                # Istio's mangle ISTIO_INBOUND has no tunnel-port RETURN (only nat has it), so in
                # TPROXY mode 15008 is diverted like any other port (SEMANTICS.md section 4, step 5).
                expect_conn "$b: client to $POD:15008 is diverted to 15006 too (no 15008 RETURN in mangle, as in Istio)" \
                        client 0 "name=inbound local=$POD:15008" --to $POD:15008
                expect_conn "$b: proxy (uid 1337) from 127.0.0.6 to its own $POD:8080 reaches the app, not 15006" \
                        pod "$E2E_PROXY_UID" "name=app-8080 local=$POD:8080 peer=127.0.0.6:*" --from 127.0.0.6 --to $POD:8080
                expect_conn "$b: proxy (uid 1337) to its own $POD:8080 without 127.0.0.6 is redirected to 15006" \
                        pod "$E2E_PROXY_UID" "name=inbound origdst=$POD:8080" --to $POD:8080
                expect_conn "$b: app (uid 0) to its own $POD:8080 reaches the app" \
                        pod 0 "name=app-8080 local=$POD:8080" --to $POD:8080
                expect_conn "$b: outbound is still captured by REDIRECT: app to 198.18.0.1:80 lands on 15001" \
                        pod 0 "name=outbound origdst=198.18.0.1:80" --to 198.18.0.1:80
                expect_conn "$b: proxy (uid 1337) to 198.18.0.1:80 reaches the client (replies come back through the divert)" \
                        pod "$E2E_PROXY_UID" "name=client-80 local=198.18.0.1:80" --to 198.18.0.1:80
        fi

        # --- IPv6 as well
        e2e_reset
        setup
        setup6
        if apply_rules "$b TPROXY IPv6" pod "$b" -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -x '' \
                -b '*' -d 15090,15021,15020,7070 --ipv6=true; then
                assert_contains "$b: ip -6 rule: fwmark 1337 looks up table 133" \
                        "$(in_ns pod ip -6 rule show)" "fwmark 0x539 lookup 133"
                assert_contains "$b: IPv6 table 133 delivers everything locally" \
                        "$(in_ns pod ip -6 route show table 133)" "local default dev lo"
                expect_conn "$b: client to [$POD6]:8080 is accepted by the transparent [::]:15006 listener as [$POD6]:8080" \
                        client 0 "name=inbound6 local=[$POD6]:8080 peer=[$CLIENT6]:*" --to "[$POD6]:8080"
                expect_conn "$b: client to [$POD6]:15021 (-d) reaches the app directly" \
                        client 0 "name=app6-15021 local=[$POD6]:15021" --to "[$POD6]:15021"
                expect_conn "$b: proxy (uid 1337) from ::6 to its own [$POD6]:8080 reaches the app, not 15006" \
                        pod "$E2E_PROXY_UID" "name=app6-8080 local=[$POD6]:8080 peer=[::6]:*" --from ::6 --to "[$POD6]:8080"
                expect_conn "$b: IPv4 alongside: client to $POD:8080 is accepted by 15006 as $POD:8080" \
                        client 0 "name=inbound local=$POD:8080" --to $POD:8080
        fi
done
