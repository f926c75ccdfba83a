#!/usr/bin/env bash
# Atomicity, with both backends: when anything fails after IPv4 was applied, the namespace is
# put back exactly as it was.
#  - the IPv6 restore fails (an ISTIO_OUTPUT chain already exists in ip6tables' nat table and
#    --force-apply skips the state check, so ip6tables-restore refuses "-N ISTIO_OUTPUT"):
#    IPv4 is rolled back, the error carries ip6tables-restore's own message;
#  - TPROXY routing fails after both families were applied (IPv6 disabled on lo, so ::6 and the
#    IPv6 local route cannot be added): both families' rules and the IPv4 fwmark rule are undone;
#  - an owner group that does not exist is refused before anything is written.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/state.sh"
e2e_init
e2e_backends

seed=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020)

fresh_pod() {
        netns_new pod
        must ip -n "$(ns pod)" link add eth0 type veth peer name veth0
        addr_add pod eth0 198.18.0.1/24
        addr_add pod eth0 2001:2::1/64
        must ip -n "$(ns pod)" link set eth0 up
        must ip -n "$(ns pod)" link set veth0 up
}

for b in "${E2E_BACKENDS[@]}"; do
        v6=ip6tables-$b
        fresh_pod
        # Someone else's rules must survive the rollback untouched, too.
        must in_ns pod "iptables-$b" -t nat -A OUTPUT -p tcp --dport 9 -j RETURN
        must in_ns pod "$v6" -t nat -N ISTIO_OUTPUT
        before=$(fw_state pod)
        out=$(in_ns pod "$PILOTFISH" iptables --force-iptables-binary="$b" "${seed[@]}" --ipv6=true --force-apply 2>&1)
        rc=$?
        assert_eq "$b: IPv6 restore failure exits 1" "$rc" 1
        assert_contains "$b: the error names the failing command" "$out" "ip6tables-$b-restore --noflush"
        assert_contains "$b: the error carries the backend's message" "$out" "ISTIO_OUTPUT"
        assert_contains "$b: the error says IPv4 was rolled back" "$out" "IPv4 rolled back"
        assert_state_unchanged "$b: after the IPv6 failure both families are as before" "$before" pod
        e2e_reset

        fresh_pod
        must in_ns pod sysctl -qw net.ipv6.conf.lo.disable_ipv6=1
        before=$(fw_state pod)
        out=$(in_ns pod "$PILOTFISH" iptables --force-iptables-binary="$b" -p 15001 -z 15006 -u 1337 -m TPROXY \
                -i '*' -b '*' --ipv6=true 2>&1)
        rc=$?
        assert_eq "$b: TPROXY routing failure exits 1" "$rc" 1
        assert_contains "$b: the error names the routing step" "$out" "TPROXY routing"
        assert_state_unchanged "$b: after the routing failure, rules and routes are as before" "$before" pod
        e2e_reset

        fresh_pod
        before=$(fw_state pod)
        out=$(in_ns pod env ISTIO_OUTBOUND_OWNER_GROUPS=pf-no-such-group "$PILOTFISH" iptables \
                --force-iptables-binary="$b" "${seed[@]}" --ipv6=true 2>&1)
        rc=$?
        assert_eq "$b: an unknown owner group exits 1" "$rc" 1
        assert_contains "$b: the error names the unknown group" "$out" "pf-no-such-group"
        assert_state_unchanged "$b: after the failed restore nothing is left" "$before" pod
        e2e_reset
done
