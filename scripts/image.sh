#!/usr/bin/env bash
# `make image`: builds pilotfish's image from deploy/Dockerfile with Debian's podman, exactly as
# written (`podman build --pull=never`), and prints its size.
#
# No image registry is needed. When the Debian base image the Dockerfile starts from
# (debian:12) is not in local storage, it is made here with debootstrap (minbase, bookworm)
# from the Debian mirror this machine's apt already uses, and imported under that name. The
# build stage's apt-get reaches the same mirror through the host's network (--network=host):
# no podman network is created for it.
#
#   scripts/image.sh [BUILD_DIR]     (work files go under BUILD_DIR/image, default build/image)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-build}/image
# shellcheck source=scripts/podman/lib.sh
. scripts/podman/lib.sh

bash scripts/install-deps.sh --image
pf_podman_setup "$work"

version=$(sed -n "s/^ *version: '\([^']*\)'.*/\1/p" meson.build | head -1)
tag=pilotfish:$version
base=docker.io/library/debian:12

# The mirror apt uses here: deb822 sources first, then the one-line format.
debian_mirror() {
        local m
        m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / bookworm( |$)/ && u { print u; exit }' \
                /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
        [ -n "$m" ] || m=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
                /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
        echo "${m:-http://deb.debian.org/debian}"
}

if ! podman image exists "$base"; then
        mirror=$(debian_mirror)
        echo "image: $base is not in local storage; making it with debootstrap from $mirror" >&2
        rm -rf "$work/debian"
        debootstrap --variant=minbase bookworm "$work/debian" "$mirror" >"$work/debootstrap.log" 2>&1 || {
                tail -20 "$work/debootstrap.log" >&2
                echo "image: debootstrap bookworm from $mirror failed (log: $work/debootstrap.log)" >&2
                exit 1
        }
        # The image's apt gets the same sources as this machine's (updates and security too).
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
                cp /etc/apt/sources.list.d/debian.sources "$work/debian/etc/apt/sources.list.d/"
                rm -f "$work/debian/etc/apt/sources.list"
        fi
        rm -rf "$work/debian"/var/cache/apt/archives/*.deb "$work/debian"/var/lib/apt/lists/*
        tar -C "$work/debian" -c . | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
        rm -rf "$work/debian"
fi

# Each build leaves untagged images behind: its build stage (about 650 MB) and the image the new
# tag replaced. They are removed afterwards, and only they: the images that were not there
# before this build, and the old pilotfish image, once untagged.
before=$(podman images -a -q --no-trunc | sort -u)
old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build --pull=never --network=host -f deploy/Dockerfile -t "$tag" . >"$work/build.log" 2>&1 || {
        tail -30 "$work/build.log" >&2
        echo "image: podman build -f deploy/Dockerfile failed (log: $work/build.log)" >&2
        exit 1
}
new=$(podman image inspect --format '{{.Id}}' "$tag")
for id in $(comm -13 <(echo "$before") <(podman images -a -q --no-trunc | sort -u)) $old; do
        id=${id#sha256:}
        [ "$id" = "${new#sha256:}" ] && continue
        if [ -z "$(podman image inspect --format '{{.RepoTags}}' "$id" 2>/dev/null | tr -d '[]')" ]; then
                podman rmi -f "$id" >/dev/null 2>&1 || true
        fi
done
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image: $tag, $size bytes ($((size / 1000000)) MB) uncompressed"
