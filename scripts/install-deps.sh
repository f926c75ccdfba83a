#!/usr/bin/env bash
# Installs, from Debian's archive, the packages pilotfish needs to build, test and run its
# demo. Only missing packages are requested, so with everything present this never touches
# the network and passes even while the archive is unreachable.
set -euo pipefail

packages=(
        # build
        gcc meson ninja-build pkg-config libmnl-dev libfyaml-dev libfyaml-utils libssl-dev openssl python3-jsonpatch
        # run: both iptables backends, iproute2 for namespaces and veth, setpriv and flock
        # (util-linux), sysctl (procps)
        iptables iproute2 util-linux procps
        # tests: real servers and clients, and promtool (prometheus) to check the metrics
        diffutils gawk nginx-light curl prometheus jq
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                missing+=("$p")
        fi
done

if [ ${#missing[@]} -eq 0 ]; then
        exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
        exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
