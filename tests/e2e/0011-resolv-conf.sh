#!/usr/bin/env bash
#
# 0011-resolv-conf: `pilotfish iptables --redirect-dns --resolv-conf FILE` reads FILE whole
# (common/readfile), so any file, pipe or FIFO works (docs/cli/iptables.md). Regression guard
# for the bug where file inputs were handed to libraries that mmap or stat them (`inject --config
# <(...)` crashed); resolv.conf went through stdio, and is now read the one way every input is.
# --dry-run needs no namespace (and --ipv6=false no address), so none is made. The test proves:
#   - the dry run with a regular file captures DNS to its nameservers, and one written CRLF,
#     after a 100,000-byte comment line, is still found;
#   - --resolv-conf <(cat FILE) (a pipe), a FIFO written late, /dev/stdin (from a file and from a
#     pipe) give the same rules;
#   - a missing file, a directory, and a pipe of more than 1 MiB: exit 1, naming the path and why.

. "$(dirname "$0")/lib.sh"
e2e_init

T=$E2E_TMP
ARGS=(-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x '' -b '*' -d 15090,15021,15020 --ipv6=false
        --redirect-dns --dry-run)
{
        printf '# written by %s\nsearch example.invalid\n' "$E2E_NAME"
        printf '# %s\n' "$(head -c 100000 /dev/zero | tr '\0' x)"
        printf 'nameserver 198.18.53.53\r\n'
        printf 'options ndots:5\nnameserver 198.18.54.54\n'
} >"$T/resolv.conf"

# dry RESOLV-CONF [ARGS...]: the dry run's rules in $T/out, stderr in $T/err, status in RC.
dry() {
        local conf=$1
        shift
        "$PILOTFISH" iptables "${ARGS[@]}" --resolv-conf "$conf" "$@" >"$T/out" 2>"$T/err"
        RC=$?
}
# same DESC: the last dry run succeeded and printed the regular file's rules.
same() {
        if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/want"; then
                ok "$1"
        else
                not_ok "$1"
                diag "exit $RC"
                diag_file "$T/err" stderr
                diag "$(diff "$T/want" "$T/out" | head -10)"
        fi
}
# refused DESC NEEDLE RESOLV-CONF: exit 1, nothing on stdout, NEEDLE on stderr.
refused() {
        dry "$3"
        if [ "$RC" = 1 ] && [ ! -s "$T/out" ] && grep -qF -- "$2" "$T/err"; then
                ok "$1"
        else
                not_ok "$1"
                diag "exit $RC, $(wc -c <"$T/out") bytes on stdout"
                diag_file "$T/err" stderr
        fi
}

dry "$T/resolv.conf"
cp "$T/out" "$T/want"
if [ "$RC" = 0 ] && grep -q -- '--dport 53 -d 198.18.53.53/32 -j REDIRECT' "$T/want" &&
   grep -q -- '--dport 53 -d 198.18.54.54/32 -j REDIRECT' "$T/want"; then
        ok "a regular resolv.conf: DNS to both nameservers is captured (the CRLF one after a 100,000-byte line too)"
else
        not_ok "a regular resolv.conf: DNS to both nameservers is captured"
        diag_file "$T/err" stderr
        diag "$(grep -- '--dport 53' "$T/want")"
fi

dry <(cat "$T/resolv.conf")
same "--resolv-conf <(cat FILE), a pipe: the same rules"
mkfifo "$T/resolv.fifo"
{ sleep 0.2; cat "$T/resolv.conf"; } >"$T/resolv.fifo" &
writer=$!
dry "$T/resolv.fifo"
wait "$writer"
same "--resolv-conf FIFO (mkfifo, written late): the same rules"
dry /dev/stdin <"$T/resolv.conf"
same "--resolv-conf /dev/stdin from a file: the same rules"
"$PILOTFISH" iptables "${ARGS[@]}" --resolv-conf /dev/stdin < <(cat "$T/resolv.conf") >"$T/out" 2>"$T/err"
RC=$?
same "--resolv-conf /dev/stdin from a pipe: the same rules"

refused "a missing resolv.conf: exit 1 naming it and why" \
        "reading DNS servers from $T/missing: No such file or directory" "$T/missing"
refused "a directory: exit 1 naming it and why" "reading DNS servers from $T: Is a directory" "$T"
refused "a pipe of more than 1 MiB: exit 1 naming the limit" "larger than the limit of 1 MiB" \
        <(head -c 1100000 /dev/zero | tr '\0' '#')
