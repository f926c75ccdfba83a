# shellcheck shell=bash
#
# lib.sh: sourced by every e2e test (tests/e2e/NNNN-*.sh).
#
# An e2e test proves interception with real packets: it builds "pods" out of network namespaces
# joined by veth pairs, runs `pilotfish iptables` in one of them, starts `probe listen` endpoints
# and checks, with `probe connect`, which endpoint each connection reaches and what original
# destination it saw. This file holds what every test needs for that:
#
#   - TAP output (`ok`/`not ok` lines, `# diag` lines, the plan printed at exit) so Meson counts
#     every assertion, and the skip rules: not root -> skip (exit 77, or 0 with E2E_SKIP_RC=0 as
#     Meson's TAP runner wants); under CI=true every skip is a failure instead;
#   - namespaces named pf-<pid>-<name>, deleted in the EXIT trap together with every process the
#     test started, whether the test passes, fails or is interrupted;
#   - veth pairs, addresses and routes, with the address rule enforced in code: only loopback,
#     198.18.0.0/15 and 2001:2::/48 (the benchmarking ranges) are ever assigned or contacted;
#   - the probe wrappers and connection assertions, and the iptables backend loop.
#
# Binaries come from the environment: PILOTFISH (the pilotfish binary) and PROBE (tests/e2e/probe).
# Setting E2E_KEEP=1 keeps the scratch directory (probe logs, pilotfish output) for a post-mortem.

set -u -o pipefail

E2E_NAME=$(basename "$0" .sh)
E2E_PREFIX="pf-$$"
E2E_TMP=""
E2E_NETNS=()
E2E_PIDS=()
# shellcheck disable=SC2034 # used by the tests that source this file
E2E_PROXY_UID=1337
E2E_STDOUT=""   # the test's own stdout and stderr, saved by e2e_init for the traps
E2E_STDERR=""
_tap_n=0
_tap_failed=0
_tap_final=0    # 1 once a plan, skip or bail-out line has been printed

# ---------------------------------------------------------------------------------------------
# TAP

# diag TEXT...: prints TEXT as TAP diagnostics, one "# " line per input line.
diag() {
        local line
        while IFS= read -r line; do
                printf '# %s\n' "$line"
        done <<<"$*"
}

# diag_file FILE [TITLE]: prints a log file as diagnostics (used when an assertion fails).
diag_file() {
        [ -s "$1" ] || return 0
        diag "--- ${2:-$1}"
        diag "$(cat "$1")"
}

ok() {
        _tap_n=$((_tap_n + 1))
        printf 'ok %d - %s\n' "$_tap_n" "$*"
}

not_ok() {
        _tap_n=$((_tap_n + 1))
        _tap_failed=$((_tap_failed + 1))
        printf 'not ok %d - %s\n' "$_tap_n" "$*"
}

# skip DESC REASON: a subtest that cannot run here. Under CI=true that is a failure.
skip() {
        if [ "${CI:-}" = true ]; then
                not_ok "$1 (skipped under CI=true: $2)"
        else
                _tap_n=$((_tap_n + 1))
                printf 'ok %d - %s # SKIP %s\n' "$_tap_n" "$1" "$2"
        fi
}

# skip_all REASON: the whole test cannot run (exit 77). Under CI=true a skip is a failure.
skip_all() {
        _tap_final=1
        if [ "${CI:-}" = true ]; then
                printf 'Bail out! %s (an e2e skip is a failure under CI=true)\n' "$1"
                exit 1
        fi
        printf '1..0 # SKIP %s\n' "$1"
        exit "${E2E_SKIP_RC:-77}"
}

# bail REASON: the test environment is broken (setup failed); stop here and fail.
bail() {
        _tap_final=1
        printf 'Bail out! %s\n' "$1"
        exit 1
}

# must CMD...: runs a setup step; bails out, showing its output, if it fails.
must() {
        local out
        if ! out=$("$@" 2>&1); then
                diag "$out"
                bail "setup step failed: $*"
        fi
}

# check DESC CMD...: one subtest that passes when CMD exits 0; its output is shown on failure.
check() {
        local desc=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok "$desc"
        else
                not_ok "$desc"
                diag "command: $*"
                diag "$out"
                return 1
        fi
}

# check_fails DESC CMD...: one subtest that passes when CMD exits non-zero.
check_fails() {
        local desc=$1 out
        shift
        if out=$("$@" 2>&1); then
                not_ok "$desc"
                diag "command unexpectedly succeeded: $*"
                diag "$out"
                return 1
        fi
        ok "$desc"
}

assert_eq() {
        local desc=$1 got=$2 want=$3
        if [ "$got" = "$want" ]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "got:  [$got]"
                diag "want: [$want]"
                return 1
        fi
}

# assert_contains DESC HAYSTACK NEEDLE: NEEDLE is a fixed string, not a pattern.
assert_contains() {
        local desc=$1 hay=$2 needle=$3
        if [[ "$hay" == *"$needle"* ]]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "missing: [$needle]"
                diag "in:"
                diag "$hay"
                return 1
        fi
}

assert_not_contains() {
        local desc=$1 hay=$2 needle=$3
        if [[ "$hay" != *"$needle"* ]]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "unexpected: [$needle]"
                diag "in:"
                diag "$hay"
                return 1
        fi
}

# assert_match DESC TEXT ERE: some line of TEXT matches the extended regular expression ERE.
assert_match() {
        local desc=$1 text=$2 re=$3
        if grep -qE -- "$re" <<<"$text"; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "no line matches: /$re/"
                diag "in:"
                diag "$text"
                return 1
        fi
}

# ---------------------------------------------------------------------------------------------
# Setup and teardown

e2e_cleanup() {
        local pid ns p left deadline=$((SECONDS + 2))
        for pid in "${E2E_PIDS[@]}"; do
                kill -TERM "$pid" 2>/dev/null
        done
        # Bounded: whatever has not gone after 2 s is killed outright.
        while :; do
                left=0
                for pid in "${E2E_PIDS[@]}"; do
                        kill -0 "$pid" 2>/dev/null && left=1
                done
                [ "$left" = 0 ] && break
                if [ "$SECONDS" -ge "$deadline" ]; then
                        for pid in "${E2E_PIDS[@]}"; do
                                kill -KILL "$pid" 2>/dev/null
                        done
                        break
                fi
                sleep 0.02
        done
        for pid in "${E2E_PIDS[@]}"; do
                wait "$pid" 2>/dev/null
        done
        E2E_PIDS=()
        for ns in "${E2E_NETNS[@]}"; do
                # Anything still inside a namespace this test created was started by this test.
                for p in $(ip netns pids "$ns" 2>/dev/null); do
                        kill -KILL "$p" 2>/dev/null
                done
                ip netns del "$ns" 2>/dev/null
        done
        E2E_NETNS=()
}

_e2e_exit() {
        local rc=$?
        trap - EXIT
        [ -n "${E2E_STDOUT:-}" ] && exec 1>&"$E2E_STDOUT" 2>&"$E2E_STDERR"
        e2e_cleanup
        if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
                if [ "${E2E_KEEP:-0}" = 1 ]; then
                        diag "kept scratch directory $E2E_TMP"
                else
                        rm -rf "$E2E_TMP"
                fi
        fi
        if [ "$_tap_final" = 0 ]; then
                if [ "$_tap_n" = 0 ]; then
                        # A test that asserted nothing proved nothing.
                        printf 'Bail out! %s ran no assertions\n' "$E2E_NAME"
                        exit 1
                fi
                printf '1..%d\n' "$_tap_n"
                if [ "$_tap_failed" -gt 0 ]; then
                        diag "$_tap_failed of $_tap_n subtests failed"
                        exit 1
                fi
        fi
        exit "$rc"
}

# Interrupted (Meson's timeout sends SIGTERM): say so, then the EXIT trap cleans up.
# A trap can run while a function's output is redirected to a log, so both traps first
# go back to the test's own stdout and stderr, saved by e2e_init.
_e2e_signal() {
        exec 1>&"$E2E_STDOUT" 2>&"$E2E_STDERR"
        _tap_final=1
        printf 'Bail out! %s interrupted by SIG%s after %d subtests\n' "$E2E_NAME" "$1" "$_tap_n"
        exit "$2"
}

# e2e_init: checks the environment (root, tools, binaries) and installs the cleanup traps.
# Call it once at the top of each test, before creating anything.
e2e_init() {
        local tool
        exec {E2E_STDOUT}>&1 {E2E_STDERR}>&2
        trap _e2e_exit EXIT
        trap '_e2e_signal INT 130' INT
        trap '_e2e_signal TERM 143' TERM
        trap '_e2e_signal HUP 129' HUP

        [ "$(id -u)" = 0 ] || skip_all "needs root to create network namespaces"
        for tool in ip setpriv; do
                command -v "$tool" >/dev/null || skip_all "$tool not found"
        done
        if [ -z "${PILOTFISH:-}" ] || [ ! -x "$PILOTFISH" ]; then
                bail "PILOTFISH must name the pilotfish binary (got '${PILOTFISH:-}')"
        fi
        if [ -z "${PROBE:-}" ] || [ ! -x "$PROBE" ]; then
                bail "PROBE must name the probe binary (got '${PROBE:-}')"
        fi
        ip netns list >/dev/null 2>&1 || skip_all "ip netns does not work here"

        E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pf-e2e-$E2E_NAME.XXXXXX") || bail "mktemp failed"
        chmod 0755 "$E2E_TMP"
        # Listeners running as the proxy UID write their ready files here.
        mkdir -m 1777 "$E2E_TMP/ready" || bail "mkdir $E2E_TMP/ready failed"
}

# e2e_reset: tears down every namespace and process created so far, so the next scenario
# starts from nothing (namespace names can then be reused).
e2e_reset() {
        e2e_cleanup
}

# ---------------------------------------------------------------------------------------------
# Addresses: only loopback, 198.18.0.0/15 and 2001:2::/48. Everything passes through here.

# addr_allowed ADDR[/LEN]: exit 0 if ADDR is loopback, in 198.18.0.0/15 or in 2001:2::/48.
# Prefixes must lie inside those ranges too (a route to 198.18.0.0/15 is fine, /14 is not).
addr_allowed() {
        local a=${1%%/*} len=
        [[ "$1" == */* ]] && len=${1##*/}
        case "$a" in
        127.*)
                [ -z "$len" ] || [ "$len" -ge 8 ]
                return ;;
        198.18.* | 198.19.*)
                [ -z "$len" ] || [ "$len" -ge 15 ]
                return ;;
        ::1 | ::6)
                [ -z "$len" ] || [ "$len" = 128 ]
                return ;;
        esac
        # 2001:2::/48 is 2001:0002:0000::/48; accept the spellings whose first three groups are that.
        if [[ "${a,,}" =~ ^2001:0{0,3}2:(:|0{1,4}:|0{1,4}$) ]]; then
                [ -z "$len" ] || [ "$len" -ge 48 ]
                return
        fi
        return 1
}

_need_addr() {
        addr_allowed "$1" || bail "address $1 is outside loopback, 198.18.0.0/15 and 2001:2::/48 (hard rule)"
}

# Strips [brackets] and :port from ADDR:PORT / [ADDR]:PORT.
_host_of() {
        local t=$1
        if [[ "$t" == \[* ]]; then
                t=${t#[}
                echo "${t%%]*}"
        else
                echo "${t%:*}"
        fi
}

# ---------------------------------------------------------------------------------------------
# Namespaces and links. Tests name namespaces briefly ("pod", "client"); ns NAME gives the real one.

ns() {
        echo "$E2E_PREFIX-$1"
}

# netns_new NAME: creates namespace pf-<pid>-NAME with lo up, deleted at exit.
netns_new() {
        local full
        full=$(ns "$1")
        # Registered first: a signal between the two steps must not leak the namespace.
        E2E_NETNS+=("$full")
        must ip netns add "$full"
        must ip -n "$full" link set lo up
}

# in_ns NAME CMD...: runs CMD inside namespace NAME as root.
in_ns() {
        local n=$1
        shift
        ip netns exec "$(ns "$n")" "$@"
}

# as_uid UID CMD...: runs CMD as UID/GID (UID 0 runs CMD unchanged). The proxy runs as 1337.
as_uid() {
        local u=$1
        shift
        if [ "$u" = 0 ]; then
                "$@"
        else
                setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
        fi
}

# veth_pair NS_A IF_A NS_B IF_B: links two namespaces with a veth pair, both ends up.
veth_pair() {
        must ip link add "$2" netns "$(ns "$1")" type veth peer name "$4" netns "$(ns "$3")"
        must ip -n "$(ns "$1")" link set "$2" up
        must ip -n "$(ns "$3")" link set "$4" up
}

# addr_add NS DEV ADDR/LEN: IPv6 addresses skip DAD so they are usable at once.
addr_add() {
        _need_addr "$3"
        if [[ "$3" == *:* ]]; then
                must ip -n "$(ns "$1")" -6 addr add "$3" dev "$2" nodad
        else
                must ip -n "$(ns "$1")" addr add "$3" dev "$2"
        fi
}

# route_add NS DEST/LEN VIA
route_add() {
        _need_addr "$2"
        _need_addr "$3"
        must ip -n "$(ns "$1")" route add "$2" via "$3"
}

# wait_file FILE [SECONDS [PID]]: polls for FILE (default 5 s); fails early if PID has exited.
wait_file() {
        local file=$1 deadline=$((SECONDS + ${2:-5})) pid=${3:-}
        while [ ! -e "$file" ]; do
                [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && [ ! -e "$file" ] && return 1
                [ "$SECONDS" -ge "$deadline" ] && return 1
                sleep 0.02
        done
}

# ---------------------------------------------------------------------------------------------
# Probes

# probe_listen NS UID NAME PROBE-LISTEN-ARGS...: starts a listener named NAME in NS as UID,
# in the background until e2e_reset/exit, logging to $E2E_TMP/NAME.log, and waits until it
# listens. NAME is what the listener puts in its replies, so it must be unique per scenario.
probe_listen() {
        local n=$1 u=$2 name=$3 pid ready log
        shift 3
        ready="$E2E_TMP/ready/$name"
        log="$E2E_TMP/$name.log"
        rm -f "$ready"
        # A simple command, not a function, so that $! is the probe itself (ip netns exec and
        # setpriv exec it) and the cleanup's signal reaches it, not a subshell around it.
        ip netns exec "$(ns "$n")" setpriv --reuid="$u" --regid="$u" --clear-groups \
                "$PROBE" listen --name "$name" --count 0 --timeout 120 --ready-file "$ready" "$@" \
                >"$log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        if ! wait_file "$ready" 5 "$pid"; then
                diag_file "$log" "$name"
                bail "listener $name ($*) in $n did not start"
        fi
}

# probe_listen_caps NS UID CAPS NAME ARGS...: as probe_listen, with ambient capabilities CAPS
# (e.g. +net_admin), which a transparent (TPROXY) listener running as the proxy UID needs.
probe_listen_caps() {
        local n=$1 u=$2 caps=$3 name=$4 pid ready log
        shift 4
        ready="$E2E_TMP/ready/$name"
        log="$E2E_TMP/$name.log"
        rm -f "$ready"
        ip netns exec "$(ns "$n")" setpriv --reuid="$u" --regid="$u" --clear-groups \
                --inh-caps="$caps" --ambient-caps="$caps" "$PROBE" listen --name "$name" --count 0 --timeout 120 --ready-file "$ready" "$@" \
                >"$log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
        pid=$!
        E2E_PIDS+=("$pid")
        if ! wait_file "$ready" 5 "$pid"; then
                diag_file "$log" "$name"
                bail "listener $name ($*) in $n did not start"
        fi
}

# probe_connect NS UID PROBE-CONNECT-ARGS...: one connection; prints probe's stdout and stderr.
# UID may be "U" or "U:G" (e.g. 0:1337 for a root process whose group is 1337).
probe_connect() {
        local n=$1 u=$2 a to=
        shift 2
        for a in "$@"; do
                [ -n "$to" ] && [ "$to" = next ] && to=$a
                [ "$a" = --to ] && to=next
        done
        [ -n "$to" ] && [ "$to" != next ] && _need_addr "$(_host_of "$to")"
        if [ "$u" = 0 ]; then
                in_ns "$n" "$PROBE" connect "$@" 2>&1
        elif [[ "$u" == *:* ]]; then
                in_ns "$n" setpriv --reuid="${u%%:*}" --regid="${u##*:}" --clear-groups "$PROBE" connect "$@" 2>&1
        else
                in_ns "$n" setpriv --reuid="$u" --regid="$u" --clear-groups "$PROBE" connect "$@" 2>&1
        fi
}

# _reply_has WANT TOKEN...: WANT equals one of the TOKENs; a "*" in WANT matches anything
# (peer=198.18.0.1:*), and IPv6 [brackets] are literal.
_reply_has() {
        local want=$1 t
        shift
        want=${want//\[/\\[}
        want=${want//\]/\\]}
        for t in "$@"; do
                # shellcheck disable=SC2053 # the right side is a pattern on purpose
                [[ "$t" == $want ]] && return 0
        done
        return 1
}

# expect_conn DESC NS UID "key=value ..." PROBE-CONNECT-ARGS...
# One subtest: the connection succeeds and the listener's reply carries every key=value token
# given (whole tokens: origdst=198.18.5.5:80 does not match origdst=198.18.5.5:8080; "*" is a
# wildcard, as in peer=198.18.0.1:*).
# The reply names the listener that served it (name=...), so "not captured" is checked by
# naming the listener at the real destination, not by the absence of an event.
expect_conn() {
        local desc=$1 n=$2 u=$3 want=$4 out tok got wants missing=()
        shift 4
        if ! out=$(probe_connect "$n" "$u" "$@"); then
                not_ok "$desc"
                diag "probe connect $* (in $n as uid $u) failed:"
                diag "$out"
                return 1
        fi
        read -ra got <<<"${out#*reply=}"
        read -ra wants <<<"$want"
        for tok in "${wants[@]}"; do
                _reply_has "$tok" "${got[@]}" || missing+=("$tok")
        done
        if [ ${#missing[@]} -eq 0 ]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "probe connect $* (in $n as uid $u)"
                diag "want: $want"
                diag "got:  $out"
                return 1
        fi
}

# expect_conn_fails DESC NS UID PROBE-CONNECT-ARGS...: the connection must not succeed.
expect_conn_fails() {
        local desc=$1 n=$2 u=$3 out
        shift 3
        if out=$(probe_connect "$n" "$u" "$@"); then
                not_ok "$desc"
                diag "probe connect $* (in $n as uid $u) unexpectedly succeeded:"
                diag "$out"
                return 1
        fi
        ok "$desc"
}

# ---------------------------------------------------------------------------------------------
# pilotfish and the iptables backends

# e2e_backends: sets E2E_BACKENDS to the iptables backends to test (legacy, nft). A backend
# whose tools are missing is reported as a skipped subtest (a failure under CI=true).
# Each backend gets fresh namespaces: rules of both backends in one namespace would all apply.
E2E_BACKENDS=()
e2e_backends() {
        local b t missing
        E2E_BACKENDS=()
        for b in legacy nft; do
                missing=
                for t in iptables-$b iptables-$b-save ip6tables-$b ip6tables-$b-save; do
                        command -v "$t" >/dev/null || missing=$t
                done
                if [ -n "$missing" ]; then
                        skip "backend $b" "$missing not found"
                        continue
                fi
                E2E_BACKENDS+=("$b")
        done
}

# pf_iptables NS BACKEND ARGS...: runs `pilotfish iptables --force-iptables-binary=BACKEND ARGS`
# in NS; its output goes to $E2E_TMP/pilotfish-N.log and is shown on failure. Returns its status.
_pf_runs=0
pf_iptables() {
        local n=$1 b=$2 log rc
        shift 2
        _pf_runs=$((_pf_runs + 1))
        log="$E2E_TMP/pilotfish-$_pf_runs.log"
        ip netns exec "$(ns "$n")" "$PILOTFISH" iptables --force-iptables-binary="$b" "$@" >"$log" 2>&1
        rc=$?
        if [ "$rc" != 0 ]; then
                diag "pilotfish iptables --force-iptables-binary=$b $(show_args "$@") (in $n) exited $rc:"
                diag_file "$log" "pilotfish output"
        fi
        return "$rc"
}

# show_args ARGS...: ARGS as one line a reader can paste: empty and wildcard values quoted.
show_args() {
        local a out=()
        for a in "$@"; do
                if [ -z "$a" ] || [[ "$a" == *[\ \*]* ]]; then
                        out+=("'$a'")
                else
                        out+=("$a")
                fi
        done
        echo "${out[*]}"
}

# apply_rules DESC NS BACKEND ARGS...: the subtest "pilotfish iptables applies", then a check
# that the rules went to BACKEND (and not to the other one). Returns non-zero if applying failed,
# so a scenario can stop instead of reporting every connection as a consequential failure.
apply_rules() {
        local desc=$1 n=$2 b=$3 other save
        shift 3
        if ! pf_iptables "$n" "$b" "$@"; then
                not_ok "$desc: pilotfish iptables $(show_args "$@") exits 0"
                return 1
        fi
        ok "$desc: pilotfish iptables $(show_args "$@") exits 0"
        other=nft
        [ "$b" = nft ] && other=legacy
        save=$(in_ns "$n" "iptables-$b-save" 2>&1)
        assert_contains "$desc: rules are in the iptables-$b tables" "$save" ":ISTIO_OUTPUT"
        save=$(in_ns "$n" "iptables-$other-save" 2>&1 | grep -v '^#')
        assert_not_contains "$desc: nothing was written through iptables-$other" "$save" "ISTIO"
}

# rules NS BACKEND FAMILY TABLE: `iptables -t TABLE -S` through BACKEND (FAMILY 4 or 6).
rules() {
        local t=iptables
        [ "$3" = 6 ] && t=ip6tables
        in_ns "$1" "$t-$2" -t "$4" -S 2>&1
}
