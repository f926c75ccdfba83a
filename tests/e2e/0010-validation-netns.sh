#!/usr/bin/env bash
# The flags that change how and where pilotfish iptables runs, not which rules it writes:
#  - --run-validation (with --skip-rule-apply, as Istio's CNI validation container runs it, as
#    the proxy UID): exit 0 where the rules redirect 127.0.0.6:15002, exit 126 where they do not;
#  - --network-namespace: run from another namespace, the rules land in the named one only;
#  - --cni-mode with iptables-legacy: the xtables lock is the namespace's own file, so the run
#    does not wait on the global /run/xtables.lock held by someone else;
#  - backend detection with no --force-iptables-binary: legacy when it holds rules, else nft.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/state.sh"
e2e_init

seed=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --ipv6=false)

netns_new pod
netns_new other
apply_rules "validation setup" pod nft "${seed[@]}"
check "--run-validation --skip-rule-apply as UID 1337 passes where the rules are in place" \
        in_ns pod setpriv --reuid=1337 --regid=1337 --clear-groups "$PILOTFISH" iptables \
        "${seed[@]}" --run-validation --skip-rule-apply --probe-timeout=5s
out=$(in_ns other setpriv --reuid=1337 --regid=1337 --clear-groups "$PILOTFISH" iptables \
        "${seed[@]}" --run-validation --skip-rule-apply --probe-timeout=1500ms 2>&1)
rc=$?
assert_eq "--run-validation without rules exits 126" "$rc" 126
assert_contains "and says what did not happen" "$out" "127.0.0.6:15002"
e2e_reset

netns_new pod
netns_new outer
pod_before=$(fw_state pod)
outer_before=$(fw_state outer)
check "--network-namespace from another namespace exits 0" \
        in_ns outer "$PILOTFISH" iptables --force-iptables-binary=nft "${seed[@]}" \
        --network-namespace="/run/netns/$(ns pod)"
assert_contains "the rules are in the named namespace" "$(rules pod nft 4 nat)" "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
assert_state_unchanged "the namespace it was started in is untouched" "$outer_before" outer
check "--cleanup-only through --network-namespace exits 0" \
        in_ns outer "$PILOTFISH" iptables --force-iptables-binary=nft --cleanup-only \
        --network-namespace="/run/netns/$(ns pod)"
assert_state_unchanged "and removes them" "$pod_before" pod
e2e_reset

command -v flock >/dev/null || bail "flock (util-linux) not found"
netns_new pod
# Hold the global lock from this shell (no helper process to outlive the test).
exec 9>>/run/xtables.lock
flock 9 || bail "cannot take /run/xtables.lock"
start=$SECONDS
check "--cni-mode with iptables-legacy applies while /run/xtables.lock is held" \
        "$PILOTFISH" iptables --force-iptables-binary=legacy "${seed[@]}" --cni-mode \
        --network-namespace="/run/netns/$(ns pod)"
diag "took $((SECONDS - start)) s (without --cni-mode it would wait for the lock)"
flock -u 9
exec 9>&-
assert_contains "the rules are there" "$(rules pod legacy 4 nat)" "-A ISTIO_OUTPUT -j ISTIO_REDIRECT"
e2e_reset

# Backend detection without --force-iptables-binary (SEMANTICS.md section 12): iptables-legacy
# when it already holds rules in the namespace, else iptables-nft.
netns_new pod
check "with no backend forced, a fresh namespace is programmed" \
        in_ns pod "$PILOTFISH" iptables "${seed[@]}"
assert_contains "through iptables-nft" "$(in_ns pod iptables-nft-save)" ":ISTIO_OUTPUT"
assert_not_contains "and not through iptables-legacy" "$(in_ns pod iptables-legacy-save)" "ISTIO"
e2e_reset
netns_new pod
must in_ns pod iptables-legacy -t filter -A INPUT -p tcp --dport 9 -j ACCEPT
check "with no backend forced, a namespace whose iptables-legacy holds rules is programmed" \
        in_ns pod "$PILOTFISH" iptables "${seed[@]}"
assert_contains "through iptables-legacy" "$(in_ns pod iptables-legacy-save)" ":ISTIO_OUTPUT"
assert_not_contains "and not through iptables-nft" "$(in_ns pod iptables-nft-save 2>/dev/null | grep -v '^#')" "ISTIO"
assert_contains "the existing legacy rule is kept" "$(in_ns pod iptables-legacy-save)" "--dport 9 -j ACCEPT"
