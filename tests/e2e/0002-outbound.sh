#!/usr/bin/env bash
#
# 0002-outbound: outbound TCP capture (SEMANTICS.md sections 4 and 6, steps 6-16).
#
# Topology, per backend and per scenario (fresh namespaces each time):
#
#   pod  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  peer
#        route 198.18.0.0/15 via .0.2                         lo 198.18.5.5, 198.18.6.6, 198.18.7.7
#        listeners: 15001 (uid 1337) "outbound"               listeners: 80, 8080, 9090 (tcp), 80 (udp)
#                   127.0.0.1:80     "pod-lo-80"
#
# Every connection is made from the pod and must be served by exactly the listener named in the
# assertion: "outbound" with the original destination for a captured connection, or the peer's
# real listener for one that goes straight through.

. "$(dirname "$0")/lib.sh"
e2e_init

PEER_PORTS="80 8080 9090"

setup() {
        local p
        netns_new pod
        netns_new peer
        veth_pair pod eth0 peer eth0
        addr_add pod eth0 198.18.0.1/24
        addr_add peer eth0 198.18.0.2/24
        route_add pod 198.18.0.0/15 198.18.0.2
        addr_add peer lo 198.18.5.5/32
        addr_add peer lo 198.18.6.6/32
        addr_add peer lo 198.18.7.7/32
        for p in $PEER_PORTS; do
                probe_listen peer 0 "peer-$p" --port "$p"
        done
        probe_listen peer 0 peer-udp-80 --udp --port 80
        probe_listen pod "$E2E_PROXY_UID" outbound --port 15001
        probe_listen pod 0 pod-lo-80 --addr 127.0.0.1 --port 80
}

# The flags of the reference command (ARCHITECTURE.md), which tests override where they say.
REF=(-p 15001 -z 15006 -u 1337 -m REDIRECT -b '*' -d '15090,15021,15020')

e2e_backends
for b in "${E2E_BACKENDS[@]}"; do
        # --- reference command: capture everything
        e2e_reset
        setup
        if apply_rules "$b reference" pod "$b" "${REF[@]}" -i '*' -x ''; then
                expect_conn "$b: app (uid 0) to 198.18.5.5:80 lands on 15001 with its original destination" \
                        pod 0 "name=outbound origdst=198.18.5.5:80" --to 198.18.5.5:80
                expect_conn "$b: app (uid 0) to 198.18.5.5:8080 lands on 15001 too" \
                        pod 0 "name=outbound origdst=198.18.5.5:8080" --to 198.18.5.5:8080
                expect_conn "$b: proxy (uid 1337) to 198.18.5.5:80 is not captured, it reaches the peer" \
                        pod "$E2E_PROXY_UID" "name=peer-80 local=198.18.5.5:80 peer=198.18.0.1:*" --to 198.18.5.5:80
                expect_conn "$b: a uid-0 process in group 1337 is not captured (-g defaults to -u)" \
                        pod "0:$E2E_PROXY_UID" "name=peer-80 local=198.18.5.5:80" --to 198.18.5.5:80
                expect_conn "$b: app to 127.0.0.1:80 goes straight to the local listener" \
                        pod 0 "name=pod-lo-80 local=127.0.0.1:80" --to 127.0.0.1:80
                expect_conn "$b: outbound UDP is not captured" \
                        pod 0 "name=peer-udp-80 local=198.18.5.5:80" --udp --to 198.18.5.5:80
        fi

        # --- -o 8080 and -x 198.18.7.0/24 go straight through; everything else is still captured
        e2e_reset
        setup
        if apply_rules "$b -o/-x" pod "$b" "${REF[@]}" -i '*' -x 198.18.7.0/24 -o 8080; then
                expect_conn "$b: -o 8080: app to 198.18.5.5:8080 reaches the peer directly" \
                        pod 0 "name=peer-8080 local=198.18.5.5:8080" --to 198.18.5.5:8080
                expect_conn "$b: -x 198.18.7.0/24: app to 198.18.7.7:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=198.18.7.7:80" --to 198.18.7.7:80
                expect_conn "$b: -o/-x: app to 198.18.5.5:80 is still captured" \
                        pod 0 "name=outbound origdst=198.18.5.5:80" --to 198.18.5.5:80
                expect_conn "$b: -x 198.18.7.0/24: 198.18.7.7:9090 is excluded by address whatever the port" \
                        pod 0 "name=peer-9090 local=198.18.7.7:9090" --to 198.18.7.7:9090
                expect_conn "$b: -o 8080: proxy port exclusion holds for any address (198.18.6.6:8080)" \
                        pod 0 "name=peer-8080 local=198.18.6.6:8080" --to 198.18.6.6:8080
        fi

        # --- -i 198.18.5.0/24: only that range is captured
        e2e_reset
        setup
        if apply_rules "$b -i range" pod "$b" "${REF[@]}" -i 198.18.5.0/24 -x ''; then
                expect_conn "$b: -i 198.18.5.0/24: app to 198.18.5.5:80 is captured" \
                        pod 0 "name=outbound origdst=198.18.5.5:80" --to 198.18.5.5:80
                expect_conn "$b: -i 198.18.5.0/24: app to 198.18.6.6:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=198.18.6.6:80" --to 198.18.6.6:80
                expect_conn "$b: -i 198.18.5.0/24: proxy (uid 1337) to 198.18.5.5:80 is not captured" \
                        pod "$E2E_PROXY_UID" "name=peer-80 local=198.18.5.5:80" --to 198.18.5.5:80
        fi

        # --- -q 9090 with -i '': only port 9090 is captured
        e2e_reset
        setup
        if apply_rules "$b -q" pod "$b" "${REF[@]}" -i '' -x '' -q 9090; then
                expect_conn "$b: -q 9090: app to 198.18.5.5:9090 is captured" \
                        pod 0 "name=outbound origdst=198.18.5.5:9090" --to 198.18.5.5:9090
                expect_conn "$b: -q 9090: app to 198.18.6.6:9090 is captured" \
                        pod 0 "name=outbound origdst=198.18.6.6:9090" --to 198.18.6.6:9090
                expect_conn "$b: -q 9090 -i '': app to 198.18.5.5:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=198.18.5.5:80" --to 198.18.5.5:80
                expect_conn "$b: -q 9090: proxy (uid 1337) to 198.18.5.5:9090 is not captured" \
                        pod "$E2E_PROXY_UID" "name=peer-9090 local=198.18.5.5:9090" --to 198.18.5.5:9090
        fi
done
