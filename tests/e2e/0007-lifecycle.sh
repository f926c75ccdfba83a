#!/usr/bin/env bash
# Re-running, changing settings, reconciling and cleaning up, with both backends:
#  - a second run with the same settings exits 0 and changes nothing;
#  - a run with other settings exits 1, names the difference and changes nothing;
#  - --reconcile replaces the rules, and connections made while it runs are all captured
#    (no window in which traffic escapes);
#  - --cleanup-only with no capture flags leaves no ISTIO_ chain, no jump to one, no TPROXY
#    rule or route, in any table of either family; with other settings than those applied, too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/state.sh"
e2e_init
e2e_backends

seed=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --ipv6=false)

pod_with_peer() {
        netns_new pod
        netns_new peer
        veth_pair pod eth0 peer eth0
        addr_add pod eth0 198.18.0.1/24
        addr_add peer eth0 198.18.0.2/24
        addr_add pod eth0 2001:2::1/64
        addr_add peer eth0 2001:2::2/64
}

for b in "${E2E_BACKENDS[@]}"; do
        pod_with_peer
        apply_rules "$b: first run" pod "$b" "${seed[@]}"
        before=$(fw_state pod)
        check "$b: second run with the same settings exits 0" pf_iptables pod "$b" "${seed[@]}"
        assert_state_unchanged "$b: second run changed nothing" "$before" pod

        out=$(in_ns pod "$PILOTFISH" iptables --force-iptables-binary="$b" "${seed[@]/15090,15021,15020/15090,15021}" 2>&1)
        rc=$?
        assert_eq "$b: other settings over existing rules exit 1" "$rc" 1
        assert_contains "$b: the error names the differing rule" "$out" \
                'ISTIO_INBOUND rule 4: have "-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN"'
        assert_state_unchanged "$b: the refused run changed nothing" "$before" pod

        # Reconcile back and forth while the application keeps connecting out: every connection
        # must reach the proxy's listener; one that reached 198.18.0.2 directly escaped capture.
        probe_listen pod 1337 "outbound-$b" --port 15001
        probe_listen peer 0 "direct-$b" --port 80 --addr 198.18.0.2
        : > "$E2E_TMP/conns-$b"
        (
                # Not the test's cleanup: that belongs to the parent shell.
                trap - EXIT INT TERM HUP
                end=$((SECONDS + 30))
                while [ ! -e "$E2E_TMP/stop-$b" ] && [ "$SECONDS" -lt "$end" ]; do
                        ip netns exec "$(ns pod)" "$PROBE" connect --to 198.18.0.2:80 --timeout 2 \
                                >> "$E2E_TMP/conns-$b" 2>&1
                done
        ) &
        loop=$!
        E2E_PIDS+=("$loop")
        ok_runs=0
        for i in 1 2 3 4 5 6 7 8 9 10; do
                if [ $((i % 2)) = 1 ]; then d=15090,15021; else d=15090,15021,15020; fi
                pf_iptables pod "$b" "${seed[@]/15090,15021,15020/$d}" --reconcile && ok_runs=$((ok_runs + 1))
        done
        touch "$E2E_TMP/stop-$b"
        wait "$loop"
        assert_eq "$b: ten reconciles between two settings all exit 0" "$ok_runs" 10
        total=$(grep -c 'reply=' "$E2E_TMP/conns-$b")
        captured=$(grep -c "name=outbound-$b" "$E2E_TMP/conns-$b")
        diag "$b: $captured of $total connections made during the reconciles were captured"
        check "$b: connections were made while reconciling" test "$total" -ge 5
        assert_eq "$b: every connection made while reconciling was captured" "$captured" "$total"
        assert_eq "$b: after reconciling, the rules are those of the last settings" \
                "$(rules pod "$b" 4 nat | grep -c -- '--dport 15020 -j RETURN')" 1
        check "$b: a run with the last settings now exits 0" pf_iptables pod "$b" "${seed[@]}"
        e2e_reset

        # Cleanup after TPROXY + IPv6 + DNS, with no capture flags.
        pod_with_peer
        printf 'nameserver 198.18.53.53\nnameserver 2001:2::53\n' > "$E2E_TMP/resolv.conf"
        clean=$(fw_state pod)
        apply_rules "$b: TPROXY, IPv6 and DNS" pod "$b" -p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -b '*' \
                -c eth9 -k eth8 --drop-invalid --redirect-dns --resolv-conf="$E2E_TMP/resolv.conf" --ipv6=true
        assert_contains "$b: the TPROXY fwmark rule is there" "$(in_ns pod ip -4 rule show)" "fwmark 0x539 lookup 133"
        check "$b: --cleanup-only exits 0" pf_iptables pod "$b" --cleanup-only
        state=$(fw_state pod)
        assert_not_contains "$b: no ISTIO_ chain or jump is left in any table or family" "$state" "ISTIO"
        assert_not_contains "$b: the TPROXY rule is gone" "$state" "fwmark"
        assert_not_contains "$b: the exclude-interface RETURNs are gone" "$state" "eth9"
        assert_not_contains "$b: the TPROXY routes are gone" "$state" "table 133"
        check "$b: a second --cleanup-only exits 0" pf_iptables pod "$b" --cleanup-only

        # Cleanup with other settings than those applied (Istio leaves leftovers here).
        apply_rules "$b: settings A" pod "$b" "${seed[@]}" -q 9090 -o 8080
        check "$b: --cleanup-only with settings B exits 0" pf_iptables pod "$b" --cleanup-only -b 8080 -i '' --ipv6=false
        assert_state_unchanged "$b: nothing of settings A is left" "$clean" pod

        # Cleanup with the same flags as applied.
        apply_rules "$b: settings A again" pod "$b" "${seed[@]}"
        check "$b: --cleanup-only with the same flags exits 0" pf_iptables pod "$b" "${seed[@]}" --cleanup-only
        assert_state_unchanged "$b: everything is removed" "$clean" pod
        e2e_reset
done
