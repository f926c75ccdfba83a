#!/usr/bin/env bash
# Installs, from Debian's archive, the packages pilotfish needs. Only missing packages are
# requested, so with everything present this never touches the network and passes even while
# the archive is unreachable.
#
#   install-deps.sh           everything: build, test, and the container runtime the pod tests use
#   install-deps.sh --build   only what building needs (the image's build stage uses this)
#   install-deps.sh --image   what `make image` needs: podman with runc, catatonit, debootstrap
#
# The sets are separate so that the image's build stage carries no test servers and no podman.
set -euo pipefail

build=(
        make gcc libc6-dev meson ninja-build pkg-config libmnl-dev libfyaml-dev libssl-dev
)
# The runtime: both iptables backends. The image's build stage installs these too, because the
# runtime stage is assembled from its files (deploy/rootfs.sh).
runtime=(iptables)
test=(
        # the injection conformance test and the webhook's patches
        libfyaml-utils openssl python3-jsonpatch
        # namespaces and veth (iproute2), setpriv and flock (util-linux), sysctl (procps)
        iproute2 util-linux procps
        # real servers and clients, and promtool (prometheus) to check the metrics
        diffutils gawk nginx-light curl prometheus jq
)
# Debian's podman; runc because crun fails on this kind of machine's hybrid cgroup layout;
# containernetworking-plugins for its bridge networks; catatonit for the pause image podman builds itself when no registry can be reached;
# debootstrap to make the Debian base image locally; busybox-static for the test pods' apps.
image=(podman runc catatonit containernetworking-plugins debootstrap busybox-static)

case "${1:-}" in
"") packages=("${build[@]}" "${runtime[@]}" "${test[@]}" "${image[@]}") ;;
--build) packages=("${build[@]}" "${runtime[@]}") ;;
--image) packages=("${image[@]}") ;;
*)
        echo "install-deps: unknown option '$1' (expected --build, --image or nothing)" >&2
        exit 2
        ;;
esac

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
