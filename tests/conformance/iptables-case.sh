#!/usr/bin/env bash
# Conformance: one istio-iptables corpus case. Runs `pilotfish iptables --dry-run` with the
# case's args and env, the two system inputs from its config (IPv6 on/off, DNS servers) given
# through --ipv6 and --resolv-conf, and compares the restore blocks with the case's expected
# output byte for byte. The one allowed difference is the OUTPUT jump: Istio >= 1.25 writes
# "-A OUTPUT -j ISTIO_OUTPUT", pilotfish writes "-p tcp" unless DNS capture is on.
set -euo pipefail
pilotfish=${PILOTFISH:?}
case_dir=${1:?case directory}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

args=()
while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] && args+=("$line")
done < "$case_dir/args"

env_args=()
if [ -f "$case_dir/env" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
                [ -n "$line" ] && env_args+=("$line")
        done < "$case_dir/env"
fi

# The cni-* cases have no config file: the CNI goldens are IPv4 only, DNS is capture-all.
config="$case_dir/config"
[ -f "$config" ] || config=/dev/null
ipv6=false
if grep -q '^EnableIPv6=true$' "$config"; then ipv6=true; fi
: > "$tmp/resolv.conf"
for key in DNSServersV4 DNSServersV6; do
        servers=$(sed -n "s/^$key=//p" "$config")
        IFS=',' read -ra list <<< "$servers"
        for s in "${list[@]}"; do
                [ -n "$s" ] && echo "nameserver $s" >> "$tmp/resolv.conf"
        done
done

# The cni-* cases pass --cni-mode; it only changes how iptables runs, not the rules.
env -i PATH="$PATH" "${env_args[@]}" "$pilotfish" iptables "${args[@]}" --dry-run \
        --ipv6="$ipv6" --resolv-conf="$tmp/resolv.conf" --log_output_level=default:none > "$tmp/got"

# Keep only restore blocks: "* table" ... "COMMIT". Drop the dry-run's "# ..." family markers
# and the expected file's logged commands (iptables-save ...).
blocks() { awk '/^\* /{on=1} on{print} /^COMMIT$/{on=0}' "$1"; }
norm() { sed -e 's/^-A OUTPUT -p tcp -j ISTIO_OUTPUT$/-A OUTPUT -j ISTIO_OUTPUT/'; }
blocks "$case_dir/expected" | norm > "$tmp/want"
blocks "$tmp/got" | norm > "$tmp/got-blocks"

# The dry run's first line marks the IPv4 input; an IPv6 marker precedes the IPv6 blocks.
head -n1 "$tmp/got" | grep -qx '# iptables-restore' || { echo "first line is not '# iptables-restore'"; exit 1; }
if [ "$ipv6" = true ]; then
        grep -qx '# ip6tables-restore' "$tmp/got" || { echo "missing '# ip6tables-restore'"; exit 1; }
fi
if ! diff -u "$tmp/want" "$tmp/got-blocks"; then
        echo "case $(basename "$case_dir"): restore blocks differ (- expected, + pilotfish)"
        exit 1
fi
# Non-normalised check: the OUTPUT jump is the -p tcp form exactly when DNS is not captured.
if grep -q -- '-j ISTIO_OUTPUT_DNS' "$tmp/got"; then
        wrong='-A OUTPUT -p tcp -j ISTIO_OUTPUT'
else
        wrong='-A OUTPUT -j ISTIO_OUTPUT'
fi
if grep -qx -- "$wrong" "$tmp/got"; then
        echo "the OUTPUT jump is '$wrong', wrong for this DNS setting"
        exit 1
fi
echo "ok: $(basename "$case_dir")"
