#!/usr/bin/env bash
#
# 0106-inject-cli: `pilotfish inject`'s command line and its failures (docs/cli/inject.md "Flags",
# "Exit status"); what injection produces is tests/conformance/inject.sh's job. No namespace is
# needed: the injector only reads and writes files. The test proves:
#   - no -f, a missing file, an unknown flag: exit 1 with Istio's or a clear message;
#   - -f - reads standard input and gives what -f FILE gives; -o FILE writes the file and
#     nothing to standard output;
#   - single-quoted values with '' escapes in a row keep their text, on one line or folded over
#     several (where libfyaml 0.7.12 read uninitialised memory into the value), and a second pass
#     changes nothing (libfyaml 0.7.12 misreads them; see inject/yaml_repair.c); an empty list item
#     is written as null, so the output reads back;
#   - broken YAML (with its line and column), a duplicate key, a pod without containers, wrong types, and one
#     bad workload among good ones: exit 1, nothing on standard output, no -o file;
#   - a host-network pod is skipped with Istio's message and passes through; a Service passes
#     through unchanged;
#   - ENABLE_NATIVE_SIDECARS=false gives the classic layout; nativeSidecars in --config wins
#     over it; an unknown or mistyped config key is an error naming it;
#   - the istio-init arguments the injector writes are accepted by `pilotfish istio-iptables
#     --dry-run`, and the proxy's by `pilotfish proxy` (which then refuses only the UID);
#   - every file input may be a pipe. Regression: `--config <(cat cfg.yaml)` with two keys was a
#     segmentation fault (libfyaml 0.7.12's fy_document_build_from_file on a pipe: negative-size-param
#     in fy_atom_cmp) and with one key said "unknown key" with an empty name. Now --config from a
#     pipe, a FIFO and /dev/stdin gives what the regular file gives, an unknown key from a pipe is
#     named, -f takes a pipe too, an empty or comments-only config means the defaults, and a
#     directory or a config over 1 MiB is refused naming the path and why;
#   - a config with a second document is refused (libfyaml's builder ignored it, and with it
#     every setting there);
#   - a list or mapping as a key is refused (libfyaml 0.7.12 writes `? &a":\n- x` it cannot read
#     back; fuzz-inject-yaml found it);
#   - a %directive warning before a YAML error does not hide the error, and no message shows
#     libfyaml's "<memory-@0xADDRESS...>" source name (the fuzzer found a config that did);
#   - a quantity of null (or ~) in the config removes the default, as docs/cli/inject.md says
#     (libfyaml's fy_node_is_null() only knows the empty value: `cpu: null` was refused).

. "$(dirname "$0")/lib.sh"
e2e_init
command -v fy-tool >/dev/null && command -v jq >/dev/null || skip_all "fy-tool and jq are needed"

T=$E2E_TMP
# inj ARGS...: runs pilotfish inject; stdout to $T/out, stderr to $T/err, status in RC.
inj() {
        "$PILOTFISH" inject "$@" >"$T/out" 2>"$T/err"
        RC=$?
}
# expect_fail DESC NEEDLE ARGS...: exit 1, nothing on stdout, NEEDLE in stderr.
expect_fail() {
        local desc=$1 needle=$2
        shift 2
        inj "$@"
        if [ "$RC" = 1 ] && [ ! -s "$T/out" ] && grep -qF -- "$needle" "$T/err"; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "exit $RC, $(wc -c <"$T/out") bytes on stdout; stderr:"
                diag_file "$T/err" stderr
        fi
}
# json FILE [FILTER]: the documents of FILE as one JSON array (the "---" after the last one
# ends it, it is not an empty document), through FILTER.
json() { fy-tool --dump --mode json "$1" | jq -s -c "[.[] | select(. != null)] | ${2:-.}"; }

cat >"$T/web.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: example/web, ports: [{containerPort: 8080}]}]
EOF
cat >"$T/svc.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80, targetPort: 8080}]
EOF

expect_fail "no -f: exit 1, Istio's message" "filename not specified (see --filename or -f)"
expect_fail "a missing file: exit 1 naming it" "reading $T/missing.yaml: No such file or directory" -f "$T/missing.yaml"
expect_fail "an unknown flag: exit 1 naming it" "--bogus" -f "$T/web.yaml" --bogus

inj -f "$T/web.yaml"
cp "$T/out" "$T/web.out"
"$PILOTFISH" inject -f - <"$T/web.yaml" >"$T/stdin.out" 2>/dev/null
if [ "$RC" = 0 ] && [ -s "$T/web.out" ] && cmp -s "$T/web.out" "$T/stdin.out"; then
        ok "-f - reads standard input and gives what -f FILE gives"
else
        not_ok "-f - reads standard input and gives what -f FILE gives"
fi
rm -f "$T/o.yaml"
inj -f "$T/web.yaml" -o "$T/o.yaml"
if [ "$RC" = 0 ] && [ ! -s "$T/out" ] && cmp -s "$T/o.yaml" "$T/web.out"; then
        ok "-o FILE writes the output there and nothing to standard output"
else
        not_ok "-o FILE writes the output there and nothing to standard output"
fi

printf 'kind: Pod\nspec:\n  containers: [\n' >"$T/broken.yaml"
expect_fail "broken YAML: exit 1 with file, line and column" "$T/broken.yaml:4:1: not valid YAML or JSON" -f "$T/broken.yaml"
# A warning (an unknown %directive) before the error: the error is the reason, on one line, and
# libfyaml's source name ("<memory-@0xADDRESS...>", a heap address) is never shown.
printf '%%FOO bar\n---\nkind: Pod\nspec:\n  containers: [\n' >"$T/directive.yaml"
expect_fail "a %directive warning, then broken YAML: the error with its line and column" \
        "$T/directive.yaml:6:1: not valid YAML or JSON: flow sequence without a closing bracket" -f "$T/directive.yaml"
if [ "$(wc -l <"$T/err")" = 2 ] && ! grep -q 'memory-@' "$T/err"; then
        ok "... on one line, without libfyaml's source name"
else
        not_ok "... on one line, without libfyaml's source name" "$(cat "$T/err")"
fi
expect_fail "the same as --config: the error, not the warning" "$T/directive.yaml: not valid YAML: flow sequence without a closing bracket" \
        -f "$T/web.yaml" --config "$T/directive.yaml"
if ! grep -q 'memory-@' "$T/err"; then
        ok "... without libfyaml's source name"
else
        not_ok "... without libfyaml's source name" "$(cat "$T/err")"
fi
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: twice\n  labels: {app: a, "app": b}\nspec: {containers: [{name: a, image: b}]}\n' >"$T/dup.yaml"
expect_fail "a duplicate key: exit 1 with the key, line and column" "$T/dup.yaml: not valid YAML or JSON: duplicate key \"app\" at line 5, column 21" -f "$T/dup.yaml"
printf '{"kind": "Service", &x": [1]}\n' >"$T/list-key.yaml"
expect_fail "a list as a key (which libfyaml would write unreadably): exit 1 saying so" \
        "not valid YAML or JSON: a list or a mapping as a key" -f "$T/list-key.yaml"
# libfyaml 0.7.12 misreads '' escapes in a row ('x''''y' as x''') and mis-writes some it reads
# right: pilotfish rewrites such scalars double-quoted with the right text (inject/yaml_repair.c).
cat >"$T/quotes.yaml" <<'QUOTES'
apiVersion: v1
kind: Pod
metadata:
  name: q
  annotations:
    'note''''s': 'a''''b'
    single: 'it''s'
    multi: 'x''''y''''z'
    folded: 'one''''
      two  

      three'
spec:
  containers:
  - name: app
    image: nginx
    args: ['echo ''''hi''''', 'plain', '''''']
QUOTES
inj -f "$T/quotes.yaml"
got=$(fy-tool --dump --mode json "$T/out" | jq -c 'select(. != null) | [.metadata.annotations["note'"''"'s"],
        .metadata.annotations.single, .metadata.annotations.multi, .metadata.annotations.folded, .spec.containers[0].args]')
assert_eq "single-quoted values with '' escapes in a row keep their text (keys, values, list items, folded lines)" "$got" \
        "[\"a''b\",\"it's\",\"x''y''z\",\"one'' two\\nthree\",[\"echo ''hi''\",\"plain\",\"''\"]]"
"$PILOTFISH" inject -f "$T/out" >"$T/again" 2>/dev/null
if cmp -s "$T/out" "$T/again"; then
        ok "... and injecting the output again changes nothing"
else
        not_ok "... and injecting the output again changes nothing" "$(diff "$T/out" "$T/again" | head -5)"
fi

# A document that is one such scalar: the same repair.
printf "''''''''''\n" >"$T/scalar.yaml"
inj -f "$T/scalar.yaml"
assert_eq "a document that is one single-quoted scalar with '' escapes in a row keeps its text" \
        "$(fy-tool --dump --mode json "$T/out" | jq -c 'select(. != null)')" "\"''''\""
# An empty list item ("-" alone): written as an explicit null, which libfyaml reads back (the
# bare "-" it would write under a key, it refuses).
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: e}\nspec:\n  containers:\n  - name: a\n    image: b\n    args:\n      -\n      - x\n' >"$T/empty-item.yaml"
inj -f "$T/empty-item.yaml"
if [ "$RC" = 0 ] && grep -qx -- '    - null' "$T/out" && "$PILOTFISH" inject -f "$T/out" >/dev/null 2>&1; then
        ok "an empty list item comes out as '- null', and the output reads back"
else
        not_ok "an empty list item comes out as '- null', and the output reads back" "$(grep -A2 'args:' "$T/out")"
fi

printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: empty}\nspec: {containers: []}\n' >"$T/empty.yaml"
expect_fail "a pod without containers: exit 1 naming it" 'Pod "default/empty": the pod has no containers' -f "$T/empty.yaml"
printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: typed}\nspec: {containers: "web"}\n' >"$T/typed.yaml"
expect_fail "containers that are not a list: exit 1" 'Pod "default/typed": the pod has no containers' -f "$T/typed.yaml"
{ cat "$T/web.yaml"; echo ---; printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: bad, annotations: {traffic.sidecar.istio.io/excludeInboundPorts: "x"}}\nspec: {containers: [{name: a, image: b}]}\n'; } >"$T/mixed.yaml"
rm -f "$T/mixed.out"
expect_fail "one bad workload among good ones: exit 1, nothing written" "excludeInboundPorts invalid" -f "$T/mixed.yaml" -o "$T/mixed.out"
if [ ! -e "$T/mixed.out" ]; then ok "... and no -o file was created"; else not_ok "... and no -o file was created"; fi

printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: host, namespace: infra}\nspec: {hostNetwork: true, containers: [{name: a, image: b}]}\n' >"$T/host.yaml"
inj -f "$T/host.yaml"
if [ "$RC" = 0 ] && grep -qF '===> Skipping injection because Pod "infra/host" has host networking enabled' "$T/err" &&
   [ "$(json "$T/out")" = "$(json "$T/host.yaml")" ]; then
        ok "a host-network pod is skipped with Istio's message and passes through unchanged"
else
        not_ok "a host-network pod is skipped with Istio's message and passes through unchanged"
        diag_file "$T/err" stderr
fi
inj -f "$T/svc.yaml"
if [ "$RC" = 0 ] && [ "$(json "$T/out")" = "$(json "$T/svc.yaml")" ]; then
        ok "a Service passes through unchanged"
else
        not_ok "a Service passes through unchanged"
fi

layout='.[0].spec.template.spec | [(.initContainers // [])[].name] + ["|"] + [.containers[].name] | join(" ")'
assert_eq "default: native sidecars (istio-proxy among the init containers)" \
        "$(json "$T/web.out" "$layout")" '"istio-init istio-proxy | web"'
ENABLE_NATIVE_SIDECARS=false "$PILOTFISH" inject -f "$T/web.yaml" >"$T/classic.out"
assert_eq "ENABLE_NATIVE_SIDECARS=false: classic layout (istio-proxy last among the containers)" \
        "$(json "$T/classic.out" "$layout")" '"istio-init | web istio-proxy"'
printf 'nativeSidecars: true\n' >"$T/native.yaml"
ENABLE_NATIVE_SIDECARS=false "$PILOTFISH" inject -f "$T/web.yaml" --config "$T/native.yaml" >"$T/native.out"
assert_eq "nativeSidecars: true in --config wins over ENABLE_NATIVE_SIDECARS=false" \
        "$(json "$T/native.out" "$layout")" '"istio-init istio-proxy | web"'
printf 'nativeSidecar: true\n' >"$T/typo.yaml"
expect_fail "an unknown config key: exit 1 naming it" "unknown key nativeSidecar" -f "$T/web.yaml" --config "$T/typo.yaml"
printf 'proxy:\n  uid: lots\n' >"$T/type.yaml"
expect_fail "a mistyped config value: exit 1 naming key and value" "proxy.uid: bad value 'lots'" -f "$T/web.yaml" --config "$T/type.yaml"

# Every file input may be a pipe (process substitution), a FIFO or /dev/stdin, and reads as the
# regular file does.
cat >"$T/cfg.yaml" <<'EOF'
image: registry.example.com/pilotfish:9.9
policy: enabled
nativeSidecars: false
neverInjectSelector: ["openshift.io/build.name"]
proxy:
  logLevel: debug
  uid: 1400
  resources:
    requests: {cpu: 20m, memory: 32Mi}
    limits: {cpu: null}
EOF
printf 'image: registry.example.com/pilotfish:9.9\npolicy: enabled\n' >"$T/cfg2.yaml"
for cfg in cfg2 cfg; do
        inj -f "$T/web.yaml" --config "$T/$cfg.yaml"
        cp "$T/out" "$T/$cfg.want"
        keys=$(grep -c '^[a-zA-Z]' "$T/$cfg.yaml")
        if [ "$RC" = 0 ] && grep -qF 'registry.example.com/pilotfish:9.9' "$T/$cfg.want"; then
                ok "--config FILE with $keys top-level keys applies them"
        else
                not_ok "--config FILE with $keys top-level keys applies them"
                diag_file "$T/err" stderr
        fi
        "$PILOTFISH" inject -f "$T/web.yaml" --config <(cat "$T/$cfg.yaml") >"$T/out" 2>"$T/err"
        RC=$?
        if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/$cfg.want"; then
                ok "--config <(cat FILE) with $keys top-level keys (a pipe) gives what --config FILE gives"
        else
                not_ok "--config <(cat FILE) with $keys top-level keys (a pipe) gives what --config FILE gives"
                diag "exit $RC"
                diag_file "$T/err" stderr
        fi
done
assert_eq "... the config's resources, where null removes the default CPU limit" \
        "$(json "$T/cfg.want" '.[0].spec.template.spec.containers[] | select(.name == "istio-proxy") | .resources')" \
        '{"requests":{"cpu":"20m","memory":"32Mi"},"limits":{"memory":"256Mi"}}'
"$PILOTFISH" inject -f "$T/web.yaml" --config /dev/stdin <"$T/cfg.yaml" >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/cfg.want"; then
        ok "--config /dev/stdin gives what --config FILE gives"
else
        not_ok "--config /dev/stdin gives what --config FILE gives" "exit $RC" "$(cat "$T/err")"
fi
cat "$T/cfg.yaml" | "$PILOTFISH" inject -f "$T/web.yaml" --config /dev/stdin >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/cfg.want"; then
        ok "--config /dev/stdin on a pipe gives what --config FILE gives"
else
        not_ok "--config /dev/stdin on a pipe gives what --config FILE gives" "exit $RC" "$(cat "$T/err")"
fi
mkfifo "$T/cfg.fifo"
{ sleep 0.2; cat "$T/cfg.yaml"; } >"$T/cfg.fifo" &
fifo_writer=$!
"$PILOTFISH" inject -f "$T/web.yaml" --config "$T/cfg.fifo" >"$T/out" 2>"$T/err"
RC=$?
wait "$fifo_writer"
if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/cfg.want"; then
        ok "--config FIFO (mkfifo, written late) gives what --config FILE gives"
else
        not_ok "--config FIFO gives what --config FILE gives" "exit $RC" "$(cat "$T/err")"
fi
"$PILOTFISH" inject -f <(cat "$T/web.yaml") --config <(cat "$T/cfg.yaml") >"$T/out" 2>"$T/err"
RC=$?
if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/cfg.want"; then
        ok "-f <(cat FILE) with --config <(cat FILE): both pipes, the same output"
else
        not_ok "-f <(cat FILE) with --config <(cat FILE): both pipes, the same output" "exit $RC" "$(cat "$T/err")"
fi
expect_fail "an unknown key from a pipe, alone: exit 1 naming it" "unknown key nativeSidecar" \
        -f "$T/web.yaml" --config <(printf 'nativeSidecar: true\n')
expect_fail "an unknown key from a pipe after known ones: exit 1 naming it" "unknown key proxy.uidd" \
        -f "$T/web.yaml" --config <(printf 'image: a/b:1\nproxy:\n  uid: 1\n  uidd: 2\n')
expect_fail "a duplicate key from a pipe: exit 1 naming it and where" 'duplicate key "image" at line 2, column 1' \
        -f "$T/web.yaml" --config <(printf 'image: a/b:1\nimage: a/b:2\n')
expect_fail "a second document from a pipe: exit 1 (it would be ignored)" "more after the first YAML document" \
        -f "$T/web.yaml" --config <(printf 'image: a/b:1\n---\nnativeSidecars: false\n')
for empty in '' '# nothing set\n\n'; do
        "$PILOTFISH" inject -f "$T/web.yaml" --config <(printf "$empty") >"$T/out" 2>"$T/err"
        RC=$?
        if [ "$RC" = 0 ] && cmp -s "$T/out" "$T/web.out"; then
                ok "an empty or comments-only config from a pipe ($(printf "$empty" | wc -c) bytes) means the defaults"
        else
                not_ok "an empty or comments-only config from a pipe means the defaults" "exit $RC" "$(cat "$T/err")"
        fi
done
expect_fail "a directory as --config: exit 1 naming it and why" "reading $T: Is a directory" -f "$T/web.yaml" --config "$T"
expect_fail "a config over 1 MiB (from a pipe): exit 1 naming the limit" "larger than the limit of 1 MiB" \
        -f "$T/web.yaml" --config <(head -c 1100000 /dev/zero | tr '\0' '#')

# The injected containers' arguments, as the containers would run them.
mapfile -t init_args < <(fy-tool --dump --mode json "$T/web.out" |
        jq -r 'select(. != null) | .spec.template.spec.initContainers[] | select(.name == "istio-init") | .args[]')
if out=$("$PILOTFISH" "${init_args[@]}" --dry-run 2>&1) && grep -q '^-A ISTIO_OUTPUT' <<<"$out"; then
        ok "pilotfish ${init_args[*]} --dry-run accepts the injected istio-init arguments"
else
        not_ok "pilotfish ${init_args[*]} --dry-run accepts the injected istio-init arguments"
        diag "$out"
fi
mapfile -t proxy_args < <(fy-tool --dump --mode json "$T/web.out" |
        jq -r 'select(. != null) | .spec.template.spec.initContainers[] | select(.name == "istio-proxy") | .args[]')
out=$(setpriv --reuid=4321 --regid=4321 --clear-groups "$PILOTFISH" "${proxy_args[@]}" 2>&1)
if [ $? = 1 ] && grep -q "running as UID 4321" <<<"$out"; then
        ok "pilotfish ${proxy_args[*]} accepts the injected proxy arguments (and refuses only the UID)"
else
        not_ok "pilotfish ${proxy_args[*]} accepts the injected proxy arguments"
        diag "$out"
fi
