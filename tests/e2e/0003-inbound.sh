#!/usr/bin/env bash
#
# 0003-inbound: inbound TCP capture in REDIRECT mode (SEMANTICS.md sections 4 and 6, steps 4, 5, 8, 9).
#
# Topology, per backend and scenario (fresh namespaces each time):
#
#   client  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  pod
#                                               listeners: 15006 (uid 1337) "inbound"
#                                                          15001 (uid 1337) "outbound"
#                                                          app-P on 8080, 7070, 9999, 15008, 15020, 15021, 15090
#
# A captured connection is served by "inbound" and carries its original destination; one that is
# not captured is served by the application listener on the port it was sent to.

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
        probe_listen pod "$E2E_PROXY_UID" inbound --port 15006
        probe_listen pod "$E2E_PROXY_UID" outbound --port 15001
        for p in $APP_PORTS; do
                probe_listen pod 0 "app-$p" --port "$p"
        done
}

e2e_backends
for b in "${E2E_BACKENDS[@]}"; do
        # --- -b '*' with -d: every port but the excluded ones
        e2e_reset
        setup
        if apply_rules "$b -b '*'" pod "$b" -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' \
                -b '*' -d 15090,15021,15020,7070; then
                expect_conn "$b: client to $POD:8080 lands on 15006 with its original destination" \
                        client 0 "name=inbound local=$POD:15006 peer=198.18.0.1:* origdst=$POD:8080" --to $POD:8080
                expect_conn "$b: client to $POD:9999 lands on 15006 too (-b '*')" \
                        client 0 "name=inbound origdst=$POD:9999" --to $POD:9999
                for p in 15008 15090 15021 15020 7070; do
                        expect_conn "$b: client to $POD:$p reaches the app on $p directly" \
                                client 0 "name=app-$p local=$POD:$p" --to $POD:$p
                done
                expect_conn "$b: proxy (uid 1337) from 127.0.0.6 to its own $POD:8080 reaches the app, not 15006" \
                        pod "$E2E_PROXY_UID" "name=app-8080 local=$POD:8080 peer=127.0.0.6:*" --from 127.0.0.6 --to $POD:8080
                expect_conn "$b: proxy (uid 1337) to its own $POD:8080 without 127.0.0.6 is sent to 15006" \
                        pod "$E2E_PROXY_UID" "name=inbound origdst=$POD:8080" --to $POD:8080
                expect_conn "$b: proxy (uid 1337) to its own $POD:15008 is not sent to 15006 (-e tunnel port)" \
                        pod "$E2E_PROXY_UID" "name=app-15008 local=$POD:15008" --to $POD:15008
                expect_conn "$b: app (uid 0) to its own $POD:8080 reaches the app" \
                        pod 0 "name=app-8080 local=$POD:8080" --to $POD:8080
        fi

        # --- -b 8080: only the listed port; -d is ignored for a list
        e2e_reset
        setup
        if apply_rules "$b -b list" pod "$b" -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' \
                -b 8080,9999 -d 8080; then
                expect_conn "$b: -b 8080,9999 -d 8080: client to $POD:8080 lands on 15006 (-d is ignored with a list)" \
                        client 0 "name=inbound origdst=$POD:8080" --to $POD:8080
                expect_conn "$b: -b 8080,9999: client to $POD:9999 lands on 15006" \
                        client 0 "name=inbound origdst=$POD:9999" --to $POD:9999
                expect_conn "$b: -b 8080,9999: client to $POD:7070 reaches the app directly" \
                        client 0 "name=app-7070 local=$POD:7070" --to $POD:7070
        fi

        # --- -b '': no inbound capture at all
        e2e_reset
        setup
        if apply_rules "$b -b ''" pod "$b" -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b ''; then
                expect_conn "$b: -b '': client to $POD:8080 reaches the app directly" \
                        client 0 "name=app-8080 local=$POD:8080" --to $POD:8080
        fi
done
