#!/usr/bin/env bash
# The seed's init container command leaves exactly the seed's `iptables -t nat -S` listing
# (tests/data/seed/iptables-nat-S.txt, section 3.2 of ../shared/seed/istio-sidecar-injection.txt),
# with both iptables backends, when run as `pilotfish iptables` and through a link named
# istio-iptables with the seed's exact arguments (including --log_output_level).
. "$(dirname "$0")/lib.sh"
e2e_init
e2e_backends

seed=${TEST_DATA_DIR:-$(dirname "$0")/../data}/seed/iptables-nat-S.txt
[ -r "$seed" ] || bail "cannot read the seed's listing at $seed (set TEST_DATA_DIR)"
want=$(cat "$seed")
[ "$(echo "$want" | wc -l)" -ge 20 ] || bail "the seed's listing in $seed is short"

ln -s "$(realpath "$PILOTFISH")" "$E2E_TMP/istio-iptables"

for b in "${E2E_BACKENDS[@]}"; do
        netns_new pod
        must ip -n "$(ns pod)" link add eth0 type veth peer name veth0
        addr_add pod eth0 198.18.0.1/24
        must ip -n "$(ns pod)" link set eth0 up
        must ip -n "$(ns pod)" link set veth0 up

        apply_rules "$b: seed command" pod "$b" -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' \
                -b '*' -d 15090,15021,15020
        assert_eq "$b: iptables -t nat -S equals the seed's listing" "$(rules pod "$b" 4 nat)" "$want"
        e2e_reset

        netns_new pod
        must ip -n "$(ns pod)" link add eth0 type veth peer name veth0
        addr_add pod eth0 198.18.0.1/24
        must ip -n "$(ns pod)" link set eth0 up
        must ip -n "$(ns pod)" link set veth0 up
        check "$b: istio-iptables link with the seed's args exits 0" \
                in_ns pod env FORCE_IPTABLES_BINARY="$b" "$E2E_TMP/istio-iptables" -p 15001 -z 15006 -u 1337 \
                -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --log_output_level=default:info
        assert_eq "$b: via istio-iptables, the listing equals the seed's" "$(rules pod "$b" 4 nat)" "$want"
        e2e_reset
done
