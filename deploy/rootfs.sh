#!/usr/bin/env bash
# Assembles the runtime root filesystem of pilotfish's image into DIR, from the files of the
# machine it runs on (the image's build stage): the two pilotfish binaries, both iptables
# backends (xtables-legacy-multi and xtables-nft-multi with every name pilotfish or a user
# calls them by, and their xtables match and target modules), the shared libraries all of
# them load, and passwd/group entries for root and 1337. Nothing else: no shell, no package
# manager, no coreutils, which is why the image is a few megabytes instead of Debian's
# slim base with iptables (about 110 MB).
#
#   deploy/rootfs.sh DIR PILOTFISH PILOTFISH_WEBHOOK
#
# The library list comes from the dynamic loader itself (ld.so --list), so it is exactly what
# the binaries and modules load on this Debian release.
set -euo pipefail

if [ $# -ne 3 ]; then
        echo "usage: deploy/rootfs.sh DIR PILOTFISH PILOTFISH_WEBHOOK" >&2
        exit 2
fi
root=$1
pilotfish=$2
webhook=$3
multiarch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
xtlib=/usr/lib/$multiarch/xtables

for f in "$pilotfish" "$webhook" /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi; do
        [ -x "$f" ] || { echo "rootfs: $f: not found or not executable" >&2; exit 1; }
done
[ -d "$xtlib" ] || { echo "rootfs: $xtlib: no xtables modules (is iptables installed?)" >&2; exit 1; }

# Debian 12 is usr-merged: /lib, /lib64, /bin and /sbin are links into /usr. The same links
# here let every library keep the path the loader was given.
mkdir -p "$root"/usr
for d in bin sbin lib lib64; do
        if [ -L /$d ]; then
                ln -sfn "$(readlink /$d)" "$root/$d"
                mkdir -p "$root/$(readlink -f /$d)"
        fi
done
mkdir -p "$root"/usr/local/bin "$root"/usr/sbin "$root"/etc "$root"/tmp "$root"/run "$root"/proc \
        "$root"/sys "$root"/dev "$root$xtlib"
chmod 1777 "$root"/tmp

install -m 0755 "$pilotfish" "$root"/usr/local/bin/pilotfish
install -m 0755 "$webhook" "$root"/usr/local/bin/pilotfish-webhook
# Istio's init container args start with istio-iptables: pilotfish behaves as its iptables
# subcommand when called by that name.
ln -sf pilotfish "$root"/usr/local/bin/istio-iptables

install -m 0755 /usr/sbin/xtables-legacy-multi /usr/sbin/xtables-nft-multi "$root"/usr/sbin/
for fam in iptables ip6tables; do
        for tool in "" -save -restore; do
                ln -sf xtables-legacy-multi "$root/usr/sbin/$fam-legacy$tool"
                ln -sf xtables-nft-multi "$root/usr/sbin/$fam-nft$tool"
                # The unsuffixed names are Debian's default alternative, nft.
                ln -sf xtables-nft-multi "$root/usr/sbin/$fam$tool"
        done
done
cp -a "$xtlib"/. "$root$xtlib"/

# Every shared object the binaries and modules need, with the loader, at their own paths.
list_libs() {
        local f
        for f in "$@"; do
                ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
        done
}
mapfile -t libs < <(list_libs "$pilotfish" "$webhook" /usr/sbin/xtables-legacy-multi \
        /usr/sbin/xtables-nft-multi "$xtlib"/*.so | sort -u)
for lib in "${libs[@]}"; do
        real=$(readlink -f "$lib")
        mkdir -p "$root$(dirname "$lib")" "$root$(dirname "$real")"
        cp -a "$real" "$root$real"
        # Through the usr-merge links /lib/x/libc.so.6 may already be the copied file itself.
        if [ "$(readlink -f "$root$lib")" != "$(readlink -f "$root$real")" ]; then
                ln -sf "$real" "$root$lib"
        fi
done
# 1337 is the proxy's UID and GID in every Istio pod; Istio's image calls it istio-proxy.
cat >"$root"/etc/passwd <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
istio-proxy:x:1337:1337:istio-proxy:/:/usr/sbin/nologin
EOF
cat >"$root"/etc/group <<'EOF'
root:x:0:
istio-proxy:x:1337:
EOF
echo 'hosts: files dns' >"$root"/etc/nsswitch.conf
