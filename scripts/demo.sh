#!/usr/bin/env bash
# The demo behind `make demo`: a network namespace stands in for a pod. pilotfish programs it
# with the seed's istio-iptables command, the rules are listed, and an application's outbound
# connection to 198.18.5.5:80 is shown arriving on port 15001, where a listener running as the
# proxy's UID 1337 reads its original destination with SO_ORIGINAL_DST.
set -euo pipefail
build=${1:-build}
pilotfish=$(realpath "$build/pilotfish")
probe=$(realpath "$build/tests/e2e/probe")
ns=pilotfish-demo-$$
tmp=$(mktemp -d)
# The listener runs as UID 1337 and writes its ready file here.
chmod 0755 "$tmp"
mkdir -m 1777 "$tmp/ready"

cleanup() {
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
        echo "demo: needs root (network namespaces and iptables)" >&2
        exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a command as one would type it (single quotes where the shell needs them), then runs it.
run() {
        local a
        printf '$'
        for a in "$@"; do
                if [[ "$a" =~ ^[A-Za-z0-9_./:,=+-]+$ ]]; then printf ' %s' "$a"; else printf " '%s'" "$a"; fi
        done
        printf '\n'
        "$@"
}

step "A pod: network namespace $ns with lo and eth0 = 198.18.0.1/24 (one end of a veth pair)"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name veth0
ip -n "$ns" link set veth0 up
ip -n "$ns" addr add 198.18.0.1/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default dev eth0

step "The init container's command (the seed's istio-iptables arguments)"
run ip netns exec "$ns" "$pilotfish" iptables -p 15001 -z 15006 -u 1337 -m REDIRECT \
        -i '*' -x '' -b '*' -d 15090,15021,15020

step "What the pod's packet filter now holds"
run ip netns exec "$ns" iptables -t nat -S

step "The sidecar's outbound listener on 15001, running as UID/GID 1337"
ip netns exec "$ns" setpriv --reuid=1337 --regid=1337 --clear-groups \
        "$probe" listen --port 15001 --count 1 --name proxy-outbound --ready-file "$tmp/ready/outbound" \
        > "$tmp/listener.out" &
for _ in $(seq 100); do [ -e "$tmp/ready/outbound" ] && break; sleep 0.05; done

step "The application (UID 0) connects to 198.18.5.5:80"
run ip netns exec "$ns" "$probe" connect --to 198.18.5.5:80
wait

step "What the listener on 15001 saw"
cat "$tmp/listener.out"
grep -q 'origdst=198.18.5.5:80' "$tmp/listener.out"
echo
echo "The connection to 198.18.5.5:80 was captured on 15001 and its original destination recovered."

step "Running it again changes nothing; --cleanup-only removes every rule"
run ip netns exec "$ns" "$pilotfish" iptables -p 15001 -z 15006 -u 1337 -m REDIRECT \
        -i '*' -x '' -b '*' -d 15090,15021,15020
run ip netns exec "$ns" "$pilotfish" iptables --cleanup-only
run ip netns exec "$ns" iptables -t nat -S
