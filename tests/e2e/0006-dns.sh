#!/usr/bin/env bash
#
# 0006-dns: DNS capture to 15053 (SEMANTICS.md section 8; section 4 steps 9 and 12).
#
# Topology, per backend and scenario (fresh namespaces each time):
#
#   pod  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  peer
#        route 198.18.0.0/15 via .0.2                         lo 198.18.53.53 (the resolver in
#        resolv.conf: nameserver 198.18.53.53                    resolv.conf), 198.18.54.54 (another)
#        listeners: 127.0.0.1:15053 udp+tcp (uid 1337)        listeners: 53 udp "peer-dns-udp",
#                   15001 (uid 1337) "outbound"                          53 tcp "peer-dns-tcp"
#
# The DNS listeners run as the proxy UID, as Istio's agent does: their UDP replies then fall in
# conntrack zone 2 with the captured query (raw table CT rules), which is what lets the kernel
# undo the redirect so the application sees the answer come from the resolver it asked. A UDP
# client here uses a connected socket, so it only accepts a reply from the address it sent to.

. "$(dirname "$0")/lib.sh"
e2e_init

RESOLVER=198.18.53.53
OTHER=198.18.54.54

RESOLV_CONF="$E2E_TMP/resolv.conf"
cat >"$RESOLV_CONF" <<EOF
# written by $E2E_NAME
search example.invalid
nameserver $RESOLVER
options ndots:5
EOF

setup() {
        netns_new pod
        netns_new peer
        veth_pair pod eth0 peer eth0
        addr_add pod eth0 198.18.0.1/24
        addr_add peer eth0 198.18.0.2/24
        route_add pod 198.18.0.0/15 198.18.0.2
        addr_add peer lo $RESOLVER/32
        addr_add peer lo $OTHER/32
        probe_listen peer 0 peer-dns-udp --udp --port 53
        probe_listen peer 0 peer-dns-tcp --port 53
        probe_listen pod "$E2E_PROXY_UID" dns-udp --udp --addr 127.0.0.1 --port 15053
        probe_listen pod "$E2E_PROXY_UID" dns-tcp --addr 127.0.0.1 --port 15053
        probe_listen pod "$E2E_PROXY_UID" outbound --port 15001
}

REF=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d '15090,15021,15020')

e2e_backends
for b in "${E2E_BACKENDS[@]}"; do
        # --- --redirect-dns: only the resolv.conf servers
        e2e_reset
        setup
        if apply_rules "$b --redirect-dns" pod "$b" "${REF[@]}" --redirect-dns --resolv-conf="$RESOLV_CONF"; then
                assert_contains "$b: raw OUTPUT jumps to ISTIO_OUTPUT_DNS" \
                        "$(rules pod "$b" 4 raw)" "-A OUTPUT -j ISTIO_OUTPUT_DNS"
                expect_conn "$b: app UDP to $RESOLVER:53 is answered by 15053, the answer appearing to come from $RESOLVER:53" \
                        pod 0 "name=dns-udp local=127.0.0.1:15053 peer=198.18.0.1:*" --udp --to $RESOLVER:53
                expect_conn "$b: app TCP to $RESOLVER:53 lands on 15053 with its original destination" \
                        pod 0 "name=dns-tcp local=127.0.0.1:15053 origdst=$RESOLVER:53" --to $RESOLVER:53
                expect_conn "$b: proxy (uid 1337) UDP to $RESOLVER:53 reaches the resolver (the agent's upstream query)" \
                        pod "$E2E_PROXY_UID" "name=peer-dns-udp local=$RESOLVER:53" --udp --to $RESOLVER:53
                expect_conn "$b: proxy (uid 1337) TCP to $RESOLVER:53 reaches the resolver" \
                        pod "$E2E_PROXY_UID" "name=peer-dns-tcp local=$RESOLVER:53" --to $RESOLVER:53
                expect_conn "$b: app UDP to $OTHER:53 (not in resolv.conf) is not captured" \
                        pod 0 "name=peer-dns-udp local=$OTHER:53" --udp --to $OTHER:53
                expect_conn "$b: app TCP to $OTHER:53 is outbound traffic, captured by 15001, not 15053" \
                        pod 0 "name=outbound origdst=$OTHER:53" --to $OTHER:53
        fi

        # --- --redirect-dns --capture-all-dns: port 53 to any address
        e2e_reset
        setup
        if apply_rules "$b --capture-all-dns" pod "$b" "${REF[@]}" --redirect-dns --capture-all-dns \
                --resolv-conf="$RESOLV_CONF"; then
                expect_conn "$b: capture-all: app UDP to $OTHER:53 is answered by 15053" \
                        pod 0 "name=dns-udp local=127.0.0.1:15053" --udp --to $OTHER:53
                expect_conn "$b: capture-all: app TCP to $OTHER:53 lands on 15053 with its original destination" \
                        pod 0 "name=dns-tcp origdst=$OTHER:53" --to $OTHER:53
                expect_conn "$b: capture-all: app UDP to $RESOLVER:53 is answered by 15053" \
                        pod 0 "name=dns-udp" --udp --to $RESOLVER:53
                expect_conn "$b: capture-all: proxy (uid 1337) UDP to $OTHER:53 reaches the server" \
                        pod "$E2E_PROXY_UID" "name=peer-dns-udp local=$OTHER:53" --udp --to $OTHER:53
                expect_conn "$b: capture-all: proxy (uid 1337) TCP to $OTHER:53 reaches the server" \
                        pod "$E2E_PROXY_UID" "name=peer-dns-tcp local=$OTHER:53" --to $OTHER:53
        fi

        # --- without --redirect-dns nothing is sent to 15053
        e2e_reset
        setup
        if apply_rules "$b no DNS" pod "$b" "${REF[@]}" --resolv-conf="$RESOLV_CONF"; then
                expect_conn "$b: no --redirect-dns: app UDP to $RESOLVER:53 reaches the resolver" \
                        pod 0 "name=peer-dns-udp local=$RESOLVER:53" --udp --to $RESOLVER:53
                expect_conn "$b: no --redirect-dns: app TCP to $RESOLVER:53 is captured by 15001" \
                        pod 0 "name=outbound origdst=$RESOLVER:53" --to $RESOLVER:53
        fi
done
