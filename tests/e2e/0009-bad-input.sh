#!/usr/bin/env bash
# Bad input: every validation error of istio-iptables (SEMANTICS.md sections 2 and 14), and
# pilotfish's stricter checks, exit 1 with a message naming the bad value, and leave the
# namespace untouched: no table is even loaded.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/state.sh"
e2e_init

netns_new pod
must ip -n "$(ns pod)" link add eth0 type veth peer name veth0
addr_add pod eth0 198.18.0.1/24
must ip -n "$(ns pod)" link set eth0 up
        must ip -n "$(ns pod)" link set veth0 up
before=$(fw_state pod)
groups65=$(seq -s, 1000 1064)

# bad DESC NEEDLE [VAR=VALUE ...] -- ARGS...
bad() {
        local desc=$1 needle=$2 envs=() out rc
        shift 2
        while [ "$1" != -- ]; do
                envs+=("$1")
                shift
        done
        shift
        out=$(in_ns pod env "${envs[@]}" "$PILOTFISH" iptables "$@" 2>&1)
        rc=$?
        if [ "$rc" = 1 ] && [[ "$out" == *"$needle"* ]]; then
                ok "$desc: exit 1, names \"$needle\""
        else
                not_ok "$desc: exit 1, names \"$needle\""
                diag "pilotfish iptables $* (env ${envs[*]}) exited $rc:"
                diag "$out"
        fi
}

bad "bare IP in -i" '"198.18.0.5"' -- -i 198.18.0.5
bad "bare IP in -x" '"198.18.0.6"' -- -i '*' -x 198.18.0.6
bad "-x '*'" '"*"' -- -i '*' -x '*'
bad "malformed CIDR" '198.18.0.0/33' -- -i 198.18.0.0/33
bad "loopback CIDR that is not loopback" '198.18.0.0/16' ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=198.18.0.0/16 --
bad "loopback CIDR with a prefix under 8" '127.0.0.0/7' ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.0/7 --
bad "loopback CIDR in IPv6" '::1/128' ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=::1/128 --
bad "loopback CIDR without a prefix" '127.0.0.1"' ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR=127.0.0.1 --
bad "more than 64 owner groups" '65 groups' ISTIO_OUTBOUND_OWNER_GROUPS="$groups65" --
bad "bad --force-iptables-binary" '"iptables-fancy"' -- --force-iptables-binary=iptables-fancy
bad "bad FORCE_IPTABLES_BINARY" '"fancy"' FORCE_IPTABLES_BINARY=fancy --
bad "unknown flag" '--no-such-flag' -- --no-such-flag
bad "unknown shorthand" "'Y'" -- -Y 1
bad "missing value" 'envoy-port' -- --envoy-port
bad "bad port in -p" '"15001x"' -- -p 15001x
bad "port out of range in -b" '"70000"' -- -b 70000
bad "bad port in -d" '"15020;"' -- -b '*' -d '15020;'
bad "bad port in -o" '"abc"' -- -o abc
bad "bad port in -q" '"9-10"' -- -q 9-10
bad "rule injection through -u" '"1337 -j ACCEPT"' -- -u '1337 -j ACCEPT'
bad "newline in an interface name" 'invalid interface name' -- -c "$(printf 'eth0\n-A')"
bad "interface name too long" '"averyveryverylongname"' -- -k averyveryverylongname
bad "misspelt interception mode" '"tproxy"' -- -m tproxy
bad "bad TPROXY mark" '"0x539"' -- -m TPROXY -b '*' -t 0x539
bad "bad route table" '"main"' -- -m TPROXY -b '*' -r main
bad "bad --ipv6" '"maybe"' -- --ipv6=maybe
bad "bad bool flag value" '"yes"' -- --dry-run=yes
bad "bad probe timeout" '"5 seconds"' -- --probe-timeout '5 seconds'
bad "bad log level" '"default:loud"' -- --log_output_level=default:loud
bad "native nftables, not implemented" 'native-nftables' -- --native-nftables
bad "unreadable resolv.conf" '/nonexistent/resolv.conf' -- --redirect-dns --resolv-conf=/nonexistent/resolv.conf
bad "network namespace that does not exist" '/nonexistent/netns' -- --network-namespace=/nonexistent/netns
bad "no iptables in PATH" 'not found in PATH' PATH=/nonexistent -- -i '*' --ipv6=false

out=$(in_ns pod "$PILOTFISH" iptables -i 198.18.0.5 -x '*' -p x 2>&1)
assert_contains "several bad values are named in one message: -i" "$out" '"198.18.0.5"'
assert_contains "several bad values are named in one message: -p" "$out" '"x"'

# With no usable address, --ipv6=auto cannot decide (Istio fails the same way).
netns_new bare
out=$(in_ns bare "$PILOTFISH" iptables -p 15001 2>&1)
rc=$?
assert_eq "no usable address with --ipv6=auto exits 1" "$rc" 1
assert_contains "and says why" "$out" "no valid local IP address"

assert_state_unchanged "after all of that the namespace is untouched" "$before" pod
check "not even a table was loaded (iptables-legacy-save prints nothing)" \
        test -z "$(in_ns pod iptables-legacy-save 2>/dev/null)"
