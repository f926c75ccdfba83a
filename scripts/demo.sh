#!/usr/bin/env bash
# The demo behind `make demo`, in two parts.
# 1. Capture: a network namespace stands in for a pod. pilotfish programs it with the seed's
#    istio-iptables command, the rules are listed, and an application's outbound connection to
#    198.18.5.5:80 is shown arriving on port 15001, where a listener running as the proxy's UID
#    1337 reads its original destination with SO_ORIGINAL_DST.
# 2. The whole path: two pods on a veth link, each with the capture rules and pilotfish proxy
#    as UID 1337; nginx in one, curl in the other; the request succeeds through both proxies,
#    and both proxies' metrics show it.
set -euo pipefail
build=${1:-build}
pilotfish=$(realpath "$build/pilotfish")
probe=$(realpath "$build/tests/e2e/probe")
ns=pilotfish-demo-$$
client=pilotfish-demo-client-$$
server=pilotfish-demo-server-$$
tmp=$(mktemp -d)
# The listener runs as UID 1337 and writes its ready file here.
chmod 0755 "$tmp"
mkdir -m 1777 "$tmp/ready"

cleanup() {
        local n
        for n in "$ns" "$client" "$server"; do
                ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null || true
                ip netns del "$n" 2>/dev/null || true
        done
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

# ---------------------------------------------------------------------------------------------
step "Part 2: two pods, $client (198.18.0.1) and $server (198.18.0.2), on a veth link"
ip netns add "$client"
ip netns add "$server"
ip link add eth0 netns "$client" type veth peer name eth0 netns "$server"
for n in "$client" "$server"; do
        ip -n "$n" link set lo up
        ip -n "$n" link set eth0 up
done
ip -n "$client" addr add 198.18.0.1/24 dev eth0
ip -n "$server" addr add 198.18.0.2/24 dev eth0

step "Both pods get the capture rules and the sidecar, running as UID/GID 1337"
for n in "$client" "$server"; do
        ip netns exec "$n" "$pilotfish" iptables -p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' \
                -d 15090,15021,15020 --log_output_level=default:warn
        ip netns exec "$n" setpriv --reuid=1337 --regid=1337 --clear-groups \
                "$pilotfish" proxy sidecar --domain default.svc.cluster.local --workers 1 --access-log=text \
                > "$tmp/proxy-$n.log" 2>&1 &
done
for _ in $(seq 100); do
        ip netns exec "$client" curl -sf http://127.0.0.1:15021/healthz/ready >/dev/null 2>&1 &&
                ip netns exec "$server" curl -sf http://127.0.0.1:15021/healthz/ready >/dev/null 2>&1 && break
        sleep 0.05
done
run ip netns exec "$client" curl -s http://127.0.0.1:15021/healthz/ready

step "nginx (from Debian) in the server pod"
mkdir -m 0755 "$tmp/www"
echo "hello from the server pod, through two pilotfish sidecars" > "$tmp/www/index.html"
chmod 0644 "$tmp/www/index.html"
cat > "$tmp/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events {}
http {
        access_log $tmp/nginx-access.log;
        client_body_temp_path $tmp;
        proxy_temp_path $tmp;
        fastcgi_temp_path $tmp;
        uwsgi_temp_path $tmp;
        scgi_temp_path $tmp;
        server { listen 198.18.0.2:80; root $tmp/www; }
}
NGINX
ip netns exec "$server" nginx -c "$tmp/nginx.conf" &
for _ in $(seq 100); do [ -e "$tmp/nginx.pid" ] && break; sleep 0.05; done

step "curl in the client pod asks http://198.18.0.2/"
run ip netns exec "$client" curl -s --max-time 5 http://198.18.0.2/

step "Each sidecar's access log: outbound in the client pod, inbound in the server pod"
sleep 0.2
grep -h -E 'outbound|inbound' "$tmp/proxy-$client.log" "$tmp/proxy-$server.log"
echo "nginx saw the request come from: $(awk '{print $1}' "$tmp/nginx-access.log" | tail -n 1) (the sidecar's passthrough address)"

step "Both sidecars' Istio metrics (GET :15090/stats/prometheus, labels abridged)"
for n in "$client" "$server"; do
        echo "-- $n"
        ip netns exec "$n" curl -s http://127.0.0.1:15090/stats/prometheus |
                grep -E '^istio_tcp_' |
                sed -E 's/\{reporter="([a-z]+)".*destination_service="([^"]+)".*response_flags="([^"]+)".*\}/{reporter="\1",destination_service="\2",response_flags="\3",...}/'
done
