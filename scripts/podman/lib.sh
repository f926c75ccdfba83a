# Sourced by pilotfish's own podman commands (scripts/image.sh, tests/runtime/): the podman
# configuration they run with, written into a directory of the caller's and passed with
# CONTAINERS_CONF, so that nothing in /etc or a user's own configuration changes.
#
# - runc: crun fails on hosts with the hybrid cgroup layout (v1 controllers plus a v2 mount).
# - cgroupfs: there may be no systemd session to ask for cgroups.
# - ulimits: podman's default RLIMIT_NOFILE (1,048,576) is above the hard limit some hosts give
#   root (20,000 seen), and no container would start.
# - file events and k8s-file logs: no journald needed.
# - catatonit (Debian's package) is the init of the pause image podman builds for itself when,
#   as here, no registry can be reached.

# pf_podman_setup DIR: writes DIR/containers.conf and exports CONTAINERS_CONF.
pf_podman_setup() {
        local dir=$1 nofile nproc hn hu
        # Below the hard limits: runc refuses (EPERM) even a limit equal to the hard one here.
        nofile=16384
        nproc=4096
        hn=$(ulimit -Hn)
        hu=$(ulimit -Hu)
        [ "$hn" != unlimited ] && [ "$hn" -le "$nofile" ] && nofile=$((hn / 2))
        [ "$hu" != unlimited ] && [ "$hu" -le "$nproc" ] && nproc=$((hu / 2))
        mkdir -p "$dir"
        cat >"$dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
        export CONTAINERS_CONF=$dir/containers.conf
}
