#!/usr/bin/env bash
#
# 0005-ipv6: outbound and inbound capture over IPv6 (SEMANTICS.md section 5, and the versioned
# rules of section 4: ::6/128 for 127.0.0.6, ::1/128 for the loopback CIDR).
#
# Topology, per backend and scenario (fresh namespaces each time); the pod has IPv6 addresses only:
#
#   peer  eth0 2001:2:0:1::1/64 ---- veth ---- eth0 2001:2:0:1::2/64  pod
#         lo 2001:2:0:5::5, 2001:2:0:6::6          route 2001:2::/48 via 2001:2:0:1::1
#         listener [::]:80 "peer-80"               listeners: [::]:15001 and [::]:15006 (uid 1337)
#                                                             [::1]:80 "pod-lo-80"
#                                                             app-P on [::]:8080, 15008, 15021
#
# The original destination of a captured connection is read with IP6T_SO_ORIGINAL_DST.

. "$(dirname "$0")/lib.sh"
e2e_init

POD=2001:2:0:1::2
PEER=2001:2:0:1::1
FAR=2001:2:0:5::5
FAR6=2001:2:0:6::6

setup() {
        local p
        netns_new peer
        netns_new pod
        veth_pair peer eth0 pod eth0
        addr_add peer eth0 $PEER/64
        addr_add pod eth0 $POD/64
        addr_add peer lo $FAR/128
        addr_add peer lo $FAR6/128
        route_add pod 2001:2::/48 $PEER
        probe_listen peer 0 peer-80 --addr :: --port 80
        probe_listen pod "$E2E_PROXY_UID" outbound --addr :: --port 15001
        probe_listen pod "$E2E_PROXY_UID" inbound --addr :: --port 15006
        probe_listen pod 0 pod-lo-80 --addr ::1 --port 80
        for p in 8080 15008 15021; do
                probe_listen pod 0 "app-$p" --addr :: --port "$p"
        done
}

REF=(-p 15001 -z 15006 -u 1337 -m REDIRECT -b '*' -d '15090,15021,15020')

e2e_backends
for b in "${E2E_BACKENDS[@]}"; do
        # --- --ipv6=true, reference flags
        e2e_reset
        setup
        if apply_rules "$b --ipv6=true" pod "$b" "${REF[@]}" -i '*' -x '' --ipv6=true; then
                assert_match "$b: ip6tables-$b nat OUTPUT jumps to ISTIO_OUTPUT" \
                        "$(rules pod "$b" 6 nat)" "^-A OUTPUT .*-j ISTIO_OUTPUT\$"
                assert_contains "$b: ip6tables-$b nat returns ::6 passthrough traffic" \
                        "$(rules pod "$b" 6 nat)" "-A ISTIO_OUTPUT -s ::6/128 -o lo -j RETURN"
                assert_contains "$b: ::6/128 was added to lo" \
                        "$(in_ns pod ip -6 addr show dev lo)" "inet6 ::6/128"
                expect_conn "$b: app (uid 0) to [$FAR]:80 lands on 15001 with its original destination" \
                        pod 0 "name=outbound local=[::1]:15001 origdst=[$FAR]:80" --to "[$FAR]:80"
                expect_conn "$b: proxy (uid 1337) to [$FAR]:80 is not captured, it reaches the peer" \
                        pod "$E2E_PROXY_UID" "name=peer-80 local=[$FAR]:80 peer=[$POD]:*" --to "[$FAR]:80"
                expect_conn "$b: app to [::1]:80 goes straight to the local listener" \
                        pod 0 "name=pod-lo-80 local=[::1]:80" --to "[::1]:80"
                expect_conn "$b: peer to [$POD]:8080 lands on 15006 with its original destination" \
                        peer 0 "name=inbound local=[$POD]:15006 peer=[$PEER]:* origdst=[$POD]:8080" --to "[$POD]:8080"
                expect_conn "$b: peer to [$POD]:15021 (-d) reaches the app directly" \
                        peer 0 "name=app-15021 local=[$POD]:15021" --to "[$POD]:15021"
                expect_conn "$b: peer to [$POD]:15008 (tunnel port) reaches the app directly" \
                        peer 0 "name=app-15008 local=[$POD]:15008" --to "[$POD]:15008"
                expect_conn "$b: proxy (uid 1337) from ::6 to its own [$POD]:8080 reaches the app, not 15006" \
                        pod "$E2E_PROXY_UID" "name=app-8080 local=[$POD]:8080 peer=[::6]:*" --from ::6 --to "[$POD]:8080"
                expect_conn "$b: proxy (uid 1337) to its own [$POD]:8080 without ::6 is sent to 15006" \
                        pod "$E2E_PROXY_UID" "name=inbound origdst=[$POD]:8080" --to "[$POD]:8080"
        fi

        # --- auto-detection: the pod's only usable address is IPv6, so IPv6 rules are built
        e2e_reset
        setup
        if apply_rules "$b auto" pod "$b" "${REF[@]}" -i '*' -x ''; then
                assert_match "$b: with only an IPv6 address, auto-detection builds ip6tables rules" \
                        "$(rules pod "$b" 6 nat)" "^-A OUTPUT .*-j ISTIO_OUTPUT\$"
                expect_conn "$b: auto: app to [$FAR]:80 lands on 15001" \
                        pod 0 "name=outbound origdst=[$FAR]:80" --to "[$FAR]:80"
        fi

        # --- -x with an IPv6 CIDR
        e2e_reset
        setup
        if apply_rules "$b -x v6" pod "$b" "${REF[@]}" -i '*' -x 2001:2:0:6::/64 --ipv6=true; then
                expect_conn "$b: -x 2001:2:0:6::/64: app to [$FAR6]:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=[$FAR6]:80" --to "[$FAR6]:80"
                expect_conn "$b: -x 2001:2:0:6::/64: app to [$FAR]:80 is still captured" \
                        pod 0 "name=outbound origdst=[$FAR]:80" --to "[$FAR]:80"
        fi

        # --- -i with IPv6 and IPv4 CIDRs: each family gets only its own
        e2e_reset
        setup
        if apply_rules "$b -i v6" pod "$b" "${REF[@]}" -i 2001:2:0:5::/64,198.18.0.0/15 -x '' --ipv6=true; then
                expect_conn "$b: -i 2001:2:0:5::/64: app to [$FAR]:80 is captured" \
                        pod 0 "name=outbound origdst=[$FAR]:80" --to "[$FAR]:80"
                expect_conn "$b: -i 2001:2:0:5::/64: app to [$FAR6]:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=[$FAR6]:80" --to "[$FAR6]:80"
        fi

        # --- -i with only IPv4 CIDRs: IPv6 outbound is not redirected at all (section 4, step 16)
        e2e_reset
        setup
        if apply_rules "$b -i v4 only" pod "$b" "${REF[@]}" -i 198.18.0.0/15 -x '' --ipv6=true; then
                expect_conn "$b: -i 198.18.0.0/15 only: app to [$FAR]:80 reaches the peer directly" \
                        pod 0 "name=peer-80 local=[$FAR]:80" --to "[$FAR]:80"
                expect_conn "$b: -i 198.18.0.0/15 only: inbound IPv6 is still captured" \
                        peer 0 "name=inbound origdst=[$POD]:8080" --to "[$POD]:8080"
        fi
done
