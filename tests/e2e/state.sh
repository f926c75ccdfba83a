# shellcheck shell=bash
#
# state.sh: sourced by the e2e tests that check what a namespace's packet filter holds before
# and after a command (idempotency, rollback, bad input). Needs lib.sh first.

# fw_state NS: every rule and user chain of every table, both families, both backends, plus
# the policy routing rules and the addresses of lo; one line each, prefixed with where it
# lives. Empty tables and counters are left out: iptables-legacy keeps a table it has loaded,
# empty, after a rollback, which holds no rule and changes no packet's fate.
fw_state() {
        local n=$1 fam b tool table line
        for b in legacy nft; do
                for fam in 4 6; do
                        tool=iptables-$b-save
                        [ "$fam" = 6 ] && tool=ip6tables-$b-save
                        table=
                        while IFS= read -r line; do
                                case "$line" in
                                \#*) ;;
                                \**) table=${line#\*} ;;
                                :*" - "* | :*" -") echo "$b/v$fam/$table chain ${line%% *}" ;;
                                :*) ;;
                                -A*) echo "$b/v$fam/$table $line" ;;
                                esac
                        done < <(in_ns "$n" "$tool" 2>/dev/null)
                done
        done
        in_ns "$n" ip -4 rule show | sed 's/^/rule4 /'
        in_ns "$n" ip -6 rule show | sed 's/^/rule6 /'
        in_ns "$n" ip -4 route show table all type local dev lo 2>/dev/null | grep -v '^local 127\.' | sed 's/^/route4 /'
        in_ns "$n" ip -6 route show table all 2>/dev/null | grep 'table 133' | sed 's/^/route6 /'
        in_ns "$n" ip -6 addr show dev lo | grep -o 'inet6 [^ ]*' | sed 's/^/lo /'
}

# assert_state_unchanged DESC BEFORE NS: the namespace's state equals BEFORE (from fw_state).
assert_state_unchanged() {
        local desc=$1 before=$2 after
        after=$(fw_state "$3")
        if [ "$before" = "$after" ]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "$(diff <(echo "$before") <(echo "$after"))"
        fi
}
