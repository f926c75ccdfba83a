#!/usr/bin/env bash
# The command line's outer contract, per subcommand: --version and --help answer and exit 0,
# the top-level help lists every subcommand, every flag `pilotfish iptables --help` shows is
# documented in docs/cli/iptables.md (and the README names every subcommand), the dry run
# prints nothing but restore input on stdout and writes the same to DRY_RUN_FILE_PATH, and
# --log_as_json logs JSON lines.
set -u
pilotfish=${PILOTFISH:?}
root=${SOURCE_ROOT:?}
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

version=$(sed -n "s/^  version: '\(.*\)',$/\1/p" "$root/meson.build")
out=$("$pilotfish" --version) && [ "$out" = "pilotfish $version" ] &&
        ok "pilotfish --version prints 'pilotfish $version'" || not_ok "pilotfish --version" "$out"

help=$("$pilotfish" --help) && ok "pilotfish --help exits 0" || not_ok "pilotfish --help exits 0"
subs=$(echo "$help" | awk '/^Subcommands:/{on=1; next} on && /^  [a-z]/{print $1} on && /^$/{exit}')
[ -n "$subs" ] && ok "the help lists subcommands: $(echo $subs)" || not_ok "the help lists subcommands" "$help"
"$pilotfish" no-such-subcommand >/dev/null 2>&1
[ $? = 1 ] && ok "an unknown subcommand exits 1" || not_ok "an unknown subcommand exits 1"

for sub in $subs; do
        "$pilotfish" "$sub" --help > "$tmp/$sub.help" 2>&1 && ok "pilotfish $sub --help exits 0" ||
                not_ok "pilotfish $sub --help exits 0" "$(cat "$tmp/$sub.help")"
        doc="$root/docs/cli/$sub.md"
        [ -f "$doc" ] && ok "docs/cli/$sub.md exists" || not_ok "docs/cli/$sub.md exists"
        grep -q "pilotfish $sub" "$root/README.md" && ok "the README shows pilotfish $sub" ||
                not_ok "the README shows pilotfish $sub"
        missing=()
        for flag in $(grep -o -- '--[a-zA-Z][a-zA-Z0-9_-]*' "$tmp/$sub.help" | sort -u); do
                grep -q -- "\`$flag\`" "$doc" 2>/dev/null || missing+=("$flag")
        done
        [ ${#missing[@]} = 0 ] && ok "every flag of pilotfish $sub --help is documented in docs/cli/$sub.md" ||
                not_ok "every flag of pilotfish $sub --help is documented" "missing: ${missing[*]}"
done

ln -s "$(realpath "$pilotfish")" "$tmp/istio-iptables"
cmp -s <("$tmp/istio-iptables" --help) <("$pilotfish" iptables --help) &&
        ok "a link named istio-iptables is pilotfish iptables" || not_ok "a link named istio-iptables is pilotfish iptables"

args=(-p 15001 -z 15006 -u 1337 -m TPROXY -i '*' -b '*' -d 15020 --redirect-dns --capture-all-dns --dry-run --ipv6=true)
DRY_RUN_FILE_PATH="$tmp/dry" "$pilotfish" iptables "${args[@]}" > "$tmp/stdout" 2> "$tmp/stderr"
rc=$?
[ $rc = 0 ] && ok "the dry run exits 0" || not_ok "the dry run exits 0" "$(cat "$tmp/stderr")"
bad=$(grep -v -E '^(# iptables-restore|# ip6tables-restore|\* (filter|mangle|nat|raw)|-N ISTIO_[A-Z_]+|-[AI] [A-Z_]+ .*|COMMIT)$' "$tmp/stdout")
[ -z "$bad" ] && ok "the dry run prints only restore input on stdout" || not_ok "the dry run prints only restore input" "$bad"
cmp -s "$tmp/stdout" "$tmp/dry" && ok "DRY_RUN_FILE_PATH receives the same text" ||
        not_ok "DRY_RUN_FILE_PATH receives the same text"

"$pilotfish" iptables -x '*' --log_as_json --ipv6=false 2> "$tmp/json" >/dev/null
grep -q -E '^\{"level":"error","time":"[0-9T:.Z-]+","msg":".*-x.*"\}$' "$tmp/json" &&
        ok "--log_as_json logs an error as one JSON line" || not_ok "--log_as_json logs JSON" "$(cat "$tmp/json")"
"$pilotfish" iptables -x '*' --log_output_level=default:none --ipv6=false 2> "$tmp/quiet" >/dev/null
[ $? = 1 ] && [ ! -s "$tmp/quiet" ] && ok "--log_output_level=default:none silences the log, exit status stays 1" ||
        not_ok "--log_output_level=default:none" "$(cat "$tmp/quiet")"

echo "1..$n"
[ $failed = 0 ]
