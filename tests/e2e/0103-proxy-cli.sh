#!/usr/bin/env bash
#
# 0103-proxy-cli: `pilotfish proxy`'s command line, environment, start-up failures, access log
# and admin endpoints (docs/cli/proxy.md "Flags", "Behaviour", "Exit status").
#
# Namespaces: "cli" (loopback only) for the start-up cases; pods a and b (198.18.0.1/.2, capture
# rules, a proxy each with --access-log=json) for the access log. The test proves:
#   - the UID check: as root, or as any UID/GID but 1337/1337, the proxy exits 1 and the message
#     names the UID/GID and --allow-any-uid; with --allow-any-uid (or its variable) it starts;
#   - an unknown flag, a stray argument and each kind of bad value (port, duration, number,
#     mode, access-log format, log level, boolean, and bad environment values) exit 1 at once,
#     naming the flag or variable and the value; --help exits 0 with the usage;
#   - Istio's exact container arguments start the proxy, and the log-level flags do what the
#     page says (--log_output_level wins over --proxyLogLevel);
#   - PILOTFISH_*_PORT variables move every listener, and a flag wins over its variable;
#   - a port already in use fails the start (exit 1) with a message naming the port, also
#     when the one listening there is another pilotfish (whose SO_REUSEPORT the kernel would
#     otherwise let share the capture ports);
#   - --access-log=json writes one JSON line per connection, when it closes, with direction,
#     client, original destination, exact byte counts and the response flags;
#   - POST /logging?level= changes the level (checked by what is logged after), refuses a bad
#     level; POST /quitquitquit exits 0 at once.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl jq ss
pf_backend

# run_proxy NS UID[:GID] [K=V...] -- ARGS...: runs `pilotfish proxy ARGS` in NS as UID (GID
# defaults to UID), with the environment additions K=V, for at most 5 s (a case that should
# fail at once but starts instead is cut off with status 124). Sets PF_RC and PF_OUT.
PF_OUT=
run_proxy() {
        local n=$1 u=$2 envs=()
        shift 2
        while [ $# -gt 0 ] && [ "$1" != -- ]; do
                envs+=("$1")
                shift
        done
        shift
        PF_OUT=$(timeout -k 1 5 ip netns exec "$(ns "$n")" env "${envs[@]}" \
                setpriv --reuid="${u%%:*}" --regid="${u##*:}" --clear-groups "$PILOTFISH" proxy "$@" 2>&1)
        PF_RC=$?
}

# refuses DESC NEEDLE... -- RUN_PROXY_ARGS...: the proxy exits 1 and its output names every NEEDLE.
refuses() {
        local desc=$1 needles=() nd missing=()
        shift
        while [ "$1" != -- ]; do
                needles+=("$1")
                shift
        done
        shift
        run_proxy "$@"
        for nd in "${needles[@]}"; do
                [[ "$PF_OUT" == *"$nd"* ]] || missing+=("$nd")
        done
        if [ "$PF_RC" = 1 ] && [ ${#missing[@]} -eq 0 ]; then
                ok "$desc"
        else
                not_ok "$desc"
                diag "exit status $PF_RC (want 1); missing from the output: ${missing[*]}"
                diag "$PF_OUT"
        fi
}

# quit NS PID DESC: POST /quitquitquit; the proxy answers 200 and exits 0 within 2 s.
quit() {
        local n=$1 pid=$2 desc=$3 code
        code=$(http_code "$n" http://127.0.0.1:15000/quitquitquit -X POST)
        wait_exit "$pid" 2
        assert_eq "$desc" "$code $PF_RC" "200 0"
}

netns_new cli
U=$E2E_PROXY_UID

# --- the UID check
refuses "as root (UID 0) the proxy refuses to start, naming the UID and --allow-any-uid" \
        "UID 0" "--allow-any-uid" -- cli 0 -- sidecar
refuses "as UID 1000 it refuses too" "UID 1000" "1337" -- cli 1000 -- sidecar
refuses "as UID 1337 with GID 1000 it refuses (the GID is exempted too), naming the GID" "GID 1000" -- \
        cli "$U:1000" -- sidecar
refuses "with --proxy-uid 1000, UID 1337 is refused (the check follows the flag)" "UID 1337" -- \
        cli "$U" -- sidecar --proxy-uid 1000
if proxy_start cli root-allowed --uid 0 -- sidecar --allow-any-uid; then
        ok "as root with --allow-any-uid the proxy starts and is ready"
        quit cli "$PF_PID" "POST /quitquitquit: 200, then exit 0 within 2 s"
else
        not_ok "as root with --allow-any-uid the proxy starts and is ready"
fi
if proxy_start cli root-allowed-env --uid 0 --env PILOTFISH_ALLOW_ANY_UID=true -- sidecar; then
        ok "PILOTFISH_ALLOW_ANY_UID=true does the same"
        quit cli "$PF_PID" "... and it quits with exit 0 too"
else
        not_ok "PILOTFISH_ALLOW_ANY_UID=true does the same"
fi

# --- bad command lines: exit 1 at once, naming what is wrong (as 1337, so accepting would start it)
refuses "an unknown flag is refused and named" "--bogus" -- cli "$U" -- sidecar --bogus
refuses "a stray argument is refused and named" "router" -- cli "$U" -- router
refuses "--outbound-port 70000: refused, value named" "70000" "--outbound-port" -- cli "$U" -- sidecar --outbound-port 70000
refuses "--health-port=0: refused, value named" '"0"' "--health-port" -- cli "$U" -- sidecar --health-port=0
refuses "--connect-timeout 10x: refused, value named" "10x" -- cli "$U" -- sidecar --connect-timeout 10x
refuses "--connect-timeout 0: refused" "--connect-timeout" -- cli "$U" -- sidecar --connect-timeout 0
refuses "--workers many: refused, value named" "many" -- cli "$U" -- sidecar --workers many
refuses "--inbound-interception-mode tproxy (case matters): refused, value named" "tproxy" -- \
        cli "$U" -- sidecar --inbound-interception-mode tproxy
refuses "--access-log yaml: refused, value named" "yaml" -- cli "$U" -- sidecar --access-log yaml
refuses "--log-level loud: refused, value named" "loud" -- cli "$U" -- sidecar --log-level loud
refuses "--allow-any-uid=maybe: refused, value named" "maybe" -- cli 0 -- sidecar --allow-any-uid=maybe
refuses "a flag with no value at the end is refused" "--admin-port" -- cli "$U" -- sidecar --admin-port
refuses "two listeners on one port are refused, the port named" "15021" -- cli "$U" -- sidecar --prometheus-port 15021
refuses "PILOTFISH_CONNECT_TIMEOUT=soon: refused, variable and value named" "PILOTFISH_CONNECT_TIMEOUT" "soon" -- \
        cli "$U" PILOTFISH_CONNECT_TIMEOUT=soon -- sidecar
refuses "PILOTFISH_HEALTH_PORT=99999: refused, variable and value named" "PILOTFISH_HEALTH_PORT" "99999" -- \
        cli "$U" PILOTFISH_HEALTH_PORT=99999 -- sidecar
refuses "every problem is named in one go" "--bogus" "10x" "70000" -- \
        cli "$U" -- sidecar --bogus --connect-timeout 10x --inbound-port 70000
run_proxy cli "$U" -- --help
assert_eq "--help exits 0" "$PF_RC" 0
assert_contains "--help shows the usage and the flags" "$PF_OUT" "--inbound-interception-mode"

# --- Istio's container arguments, and the log level flags
if proxy_start cli istio-args -- sidecar --domain cli.svc.cluster.local --proxyLogLevel=warning \
        --proxyComponentLogLevel=misc:error --log_output_level=default:info; then
        ok "Istio's exact container args (proxy sidecar --domain ... --log_output_level=default:info) start the proxy"
        assert_contains "... at log level info (--log_output_level=default:info): the ready line is logged" \
                "$(cat "$E2E_TMP/istio-args.log")" "pilotfish proxy ready"
        quit cli "$PF_PID" "... and it quits with exit 0"
else
        not_ok "Istio's exact container args (proxy sidecar --domain ... --log_output_level=default:info) start the proxy"
fi
if proxy_start cli level-error -- sidecar --proxyLogLevel=error; then
        assert_not_contains "--proxyLogLevel=error alone sets the level: no info line" \
                "$(cat "$E2E_TMP/level-error.log")" "pilotfish proxy ready"
        quit cli "$PF_PID" "... and it quits with exit 0"
else
        not_ok "--proxyLogLevel=error starts the proxy"
fi
# docs/cli/proxy.md: "--proxyLogLevel sets the log level unless --log-level or --log_output_level
# does"; Istio's own default value, given explicitly, is no exception.
if proxy_start cli level-warning -- sidecar --proxyLogLevel=warning; then
        assert_not_contains "--proxyLogLevel=warning alone sets the level to warn: no info line" \
                "$(cat "$E2E_TMP/level-warning.log")" "pilotfish proxy ready"
        quit cli "$PF_PID" "... and it quits with exit 0"
else
        not_ok "--proxyLogLevel=warning starts the proxy"
fi
if proxy_start cli level-wins -- sidecar --proxyLogLevel=debug --log_output_level=default:warn; then
        assert_not_contains "--log_output_level=default:warn wins over --proxyLogLevel=debug: no info line" \
                "$(cat "$E2E_TMP/level-wins.log")" "pilotfish proxy ready"
        quit cli "$PF_PID" "... and it quits with exit 0"
else
        not_ok "--log_output_level=default:warn --proxyLogLevel=debug starts the proxy"
fi

# --- ports from the environment; a flag wins over its variable
if proxy_start cli env-ports --ready-port 16021 --env PILOTFISH_HEALTH_PORT=16021 \
        --env PILOTFISH_PROMETHEUS_PORT=16090 --env PILOTFISH_STATUS_PORT=16020 --env PILOTFISH_ADMIN_PORT=16000 \
        --env PILOTFISH_OUTBOUND_PORT=16001 --env PILOTFISH_INBOUND_PORT=16006 -- sidecar; then
        ok "PILOTFISH_HEALTH_PORT=16021: /healthz/ready answers 200 on 16021"
        assert_eq "... and nothing answers on the default 15021" "$(http_code cli http://127.0.0.1:15021/healthz/ready)" 000
        assert_eq "PILOTFISH_PROMETHEUS_PORT=16090 / PILOTFISH_STATUS_PORT=16020: metrics on both, not on 15090" \
                "$(http_code cli http://127.0.0.1:16090/stats/prometheus) $(http_code cli http://127.0.0.1:16020/stats/prometheus) $(http_code cli http://127.0.0.1:15090/stats/prometheus)" \
                "200 200 000"
        assert_eq "PILOTFISH_ADMIN_PORT=16000: GET /stats there, not on 15000" \
                "$(http_code cli http://127.0.0.1:16000/stats) $(http_code cli http://127.0.0.1:15000/stats)" "200 000"
        out=$(in_ns cli ss -Hltn 2>&1 | awk '{ print $4 }' | grep -Eo '[0-9]+$' | sort -un | tr '\n' ' ')
        assert_eq "PILOTFISH_OUTBOUND_PORT=16001 / PILOTFISH_INBOUND_PORT=16006: the listening ports are exactly the six given" \
                "$out" "16000 16001 16006 16020 16021 16090 "
        code=$(http_code cli http://127.0.0.1:16000/quitquitquit -X POST)
        wait_exit "$PF_PID" 2
        assert_eq "... POST /quitquitquit on the moved admin port exits 0" "$code $PF_RC" "200 0"
else
        not_ok "PILOTFISH_HEALTH_PORT=16021: /healthz/ready answers 200 on 16021"
fi
if proxy_start cli flag-wins --ready-port 17021 --env PILOTFISH_HEALTH_PORT=16021 -- sidecar --health-port 17021; then
        ok "--health-port 17021 wins over PILOTFISH_HEALTH_PORT=16021 (ready on 17021)"
        assert_eq "... and nothing answers on 16021" "$(http_code cli http://127.0.0.1:16021/healthz/ready)" 000
        quit cli "$PF_PID" "... and it quits with exit 0"
else
        not_ok "--health-port 17021 wins over PILOTFISH_HEALTH_PORT=16021 (ready on 17021)"
fi

# --- a port in use fails the start, naming the port
for port in 15001 15006 15021 15090 15020; do
        probe_listen cli 0 "squat-$port" --port "$port"
        refuses "port $port already in use: the start fails with exit 1, naming $port" ":$port" -- cli "$U" -- sidecar
        # The squatter goes; the next case starts from a free set of ports.
        kill "${E2E_PIDS[-1]}" 2>/dev/null
        wait "${E2E_PIDS[-1]}" 2>/dev/null
done
# SO_REUSEPORT: a second proxy of the same UID (it sets SO_REUSEPORT too) would be let in by
# the kernel and take a share of the connections; the start-up check refuses it.
if proxy_start cli first -- sidecar; then
        first=$PF_PID
        refuses "a second proxy (same UID, SO_REUSEPORT) is refused on 15001 while the first listens" \
                ":15001" "already in use" -- cli "$U" -- sidecar --health-port 16021 --prometheus-port 16090 \
                --status-port 16020 --admin-port 16000
        refuses "... and on 15006 when only that one is shared" ":15006" "already in use" -- cli "$U" -- \
                sidecar --outbound-port 16001 --health-port 16021 --prometheus-port 16090 --status-port 16020 \
                --admin-port 16000
        assert_eq "... and the first one still answers ready" "$(http_code cli http://127.0.0.1:15021/healthz/ready)" 200
        quit cli "$first" "... and quits with exit 0"
else
        not_ok "a second proxy (same UID, SO_REUSEPORT) is refused while the first listens: the first did not start"
fi
probe_listen cli 0 squat-admin --addr 127.0.0.1 --port 15000
refuses "admin port 15000 in use on 127.0.0.1: the start fails, naming 15000" ":15000" -- cli "$U" -- sidecar
kill "${E2E_PIDS[-1]}" 2>/dev/null
wait "${E2E_PIDS[-1]}" 2>/dev/null

# --- POST /logging, POST /quitquitquit
if proxy_start cli admin -- sidecar; then
        log="$E2E_TMP/admin.log"
        assert_eq "POST /logging?level=debug: 200" "$(http_code cli 'http://127.0.0.1:15000/logging?level=debug' -X POST)" 200
        assert_contains "... and the proxy logs the change" "$(cat "$log")" "log level set to debug"
        assert_eq "POST /logging?level=loud: 400" "$(http_code cli 'http://127.0.0.1:15000/logging?level=loud' -X POST)" 400
        assert_eq "POST /logging without a level: 400" "$(http_code cli 'http://127.0.0.1:15000/logging' -X POST)" 400
        assert_eq "POST /logging?level=error: 200" "$(http_code cli 'http://127.0.0.1:15000/logging?level=error' -X POST)" 200
        assert_not_contains "... and it took effect: its own info line about the change is not logged" \
                "$(cat "$log")" "log level set to error"
        http_code cli 'http://127.0.0.1:15000/logging?level=info' -X POST >/dev/null
        assert_contains "POST /logging?level=info brings info lines back" "$(cat "$log")" "log level set to info"
        assert_eq "GET /quitquitquit is not allowed (405)" "$(http_code cli http://127.0.0.1:15000/quitquitquit)" 405
        t0=$(date +%s%N)
        quit cli "$PF_PID" "POST /quitquitquit: 200, then exit 0"
        ms=$((($(date +%s%N) - t0) / 1000000))
        if [ "$ms" -lt 1000 ]; then ok "... within 1 s ($ms ms)"; else not_ok "... within 1 s ($ms ms)"; fi
else
        not_ok "the proxy starts for the admin cases"
fi

# --- --access-log=json: one line per connection, on close
pods_new 4
apply_rules "pod a" a "$PF_BACKEND" "${PF_CAPTURE[@]}" || bail "capture rules in pod a"
apply_rules "pod b" b "$PF_BACKEND" "${PF_CAPTURE[@]}" || bail "capture rules in pod b"
proxy_start a proxy-a -- sidecar --workers 2 --access-log=json || bail "the proxy in pod a did not start"
pid_a=$PF_PID
proxy_start b proxy-b -- sidecar --workers 2 --access-log json || bail "the proxy in pod b did not start"
pid_b=$PF_PID
probe_listen b 0 app --addr "$PF_PODB" --port 80
conns=()
for _ in 1 2; do
        out=$(probe_connect a 0 --to "$PF_PODB:80")
        if [[ "$out" =~ ^connected\ proto=tcp\ local=([^ ]+)\ .*\ reply=(.*)$ ]]; then
                conns+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]}")
        else
                diag "$out"
        fi
done
assert_eq "access log: the 2 connections through both proxies work" "${#conns[@]}" 2
probe_connect a 0 --to "$PF_PODB:9" --expect-reset >/dev/null
# Written when each relay closes, a moment after the client sees the end: wait (bounded).
deadline=$((SECONDS + 5))
while :; do
        la=$(grep '^{' "$E2E_TMP/proxy-a.log")
        lb=$(grep '^{' "$E2E_TMP/proxy-b.log")
        [ "$(grep -c . <<<"$la")" -ge 3 ] && [ "$(grep -c . <<<"$lb")" -ge 3 ] && break
        [ "$SECONDS" -ge "$deadline" ] && break
        sleep 0.05
done
for n in a b; do
        l=$la
        [ "$n" = b ] && l=$lb
        assert_eq "access log: pod $n wrote one line per connection (3)" "$(grep -c . <<<"$l")" 3
        bad=$(while IFS= read -r line; do jq -e . >/dev/null 2>&1 <<<"$line" || echo "$line"; done <<<"$l")
        assert_eq "access log: pod $n: every line is one valid JSON object" "$bad" ""
done
for c in "${conns[@]}"; do
        local_addr=${c%% *}
        reply=${c#* }
        hello="hello from $local_addr"
        want="outbound $local_addr $PF_PODB:80 $((${#hello} + 1)) $((${#reply} + 1)) done -"
        got=$(jq -r --arg c "$local_addr" 'select(.client == $c) |
                "\(.direction) \(.client) \(.original_dst) \(.bytes_received) \(.bytes_sent) \(.termination) \(.response_flags)"' \
                <<<"$la" 2>&1)
        assert_eq "access log: pod a: the connection from $local_addr: outbound, its original destination, exact bytes" \
                "$got" "$want"
done
got=$(jq -r '"\(.direction) \(.client | sub(":[0-9]+$"; ":*")) \(.original_dst) \(.response_flags)"' <<<"$lb" 2>&1 | sort)
assert_eq "access log: pod b: inbound from pod a's proxy; the refused one (nothing on :9) flagged UF" "$got" \
        "$(printf 'inbound %s:* %s:80 -\ninbound %s:* %s:80 -\ninbound %s:* %s:9 UF' "$PF_PODA" "$PF_PODB" "$PF_PODA" "$PF_PODB" "$PF_PODA" "$PF_PODB")"
total=$(jq -s 'map(.bytes_received + .bytes_sent) | add' <<<"$lb" 2>&1)
want=$(jq -s 'map(select(.original_dst | endswith(":80")) | .bytes_received + .bytes_sent) | add' <<<"$la" 2>&1)
assert_eq "access log: pod b counted the same bytes as pod a" "$total" "$want"
proxy_stop "$pid_a" proxy-a "pod a: SIGTERM: the proxy exits 0, cleanly"
proxy_stop "$pid_b" proxy-b "pod b: SIGTERM: the proxy exits 0, cleanly"
