#!/usr/bin/env bash
#
# 0104-wait: `pilotfish wait` (docs/cli/wait.md), the postStart hook `pilotfish inject` gives
# the proxy when the application must wait for it, against a real `pilotfish proxy` in a
# namespace of its own (loopback only). The test proves:
#   - with nothing listening on 15021, it keeps trying and exits 1 after --timeoutSeconds,
#     saying the endpoint did not answer;
#   - started before the proxy, it is still waiting when the proxy starts, and exits 0 once
#     /healthz/ready answers 200;
#   - an endpoint that answers something else than 200 makes it exit 1 after the timeout,
#     naming the status it got;
#   - --url moves it to another port; a bad --url or a bad number exits 1 at once.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl

netns_new w
# pf_wait ARGS...: runs pilotfish wait in the namespace; sets PF_RC and PF_OUT.
pf_wait() {
        PF_OUT=$(timeout -k 1 30 ip netns exec "$(ns w)" "$PILOTFISH" wait "$@" 2>&1)
        PF_RC=$?
}

start=$SECONDS
pf_wait --timeoutSeconds 2 --periodMillis 100
if [ "$PF_RC" = 1 ] && [[ "$PF_OUT" == *"did not answer within 2 s"* ]] && [ $((SECONDS - start)) -ge 2 ]; then
        ok "nothing on 15021: exit 1 after the 2 s timeout, 'did not answer'"
else
        not_ok "nothing on 15021: exit 1 after the 2 s timeout"
        diag "exit $PF_RC after $((SECONDS - start)) s: $PF_OUT"
fi

ip netns exec "$(ns w)" "$PILOTFISH" wait --timeoutSeconds 20 --periodMillis 100 >"$E2E_TMP/wait.out" 2>&1 &
waiter=$!
E2E_PIDS+=("$waiter")
sleep 1
if kill -0 "$waiter" 2>/dev/null; then
        ok "started before the proxy, it is still waiting a second later"
else
        not_ok "started before the proxy, it is still waiting a second later"
        diag_file "$E2E_TMP/wait.out" wait
fi
proxy_start w proxy -- sidecar --workers 1 || bail "the proxy did not start"
PID=$PF_PID
wait_exit "$waiter" 10
if [ "$PF_RC" = 0 ] && grep -q "is ready after" "$E2E_TMP/wait.out"; then
        ok "... and exits 0 once the proxy answers /healthz/ready with 200"
else
        not_ok "... and exits 0 once the proxy answers /healthz/ready with 200"
        diag "exit $PF_RC"
        diag_file "$E2E_TMP/wait.out" wait
fi

pf_wait --url http://127.0.0.1:15020/healthz/ready --timeoutSeconds 2
assert_eq "--url http://127.0.0.1:15020/healthz/ready (the status port) is ready too" "$PF_RC" 0

pf_wait --url http://127.0.0.1:15021/no-such-path --timeoutSeconds 1 --periodMillis 100
if [ "$PF_RC" = 1 ] && [[ "$PF_OUT" == *"still answers 404"* ]]; then
        ok "an endpoint that answers, but not 200: exit 1 after the timeout, naming the status (404)"
else
        not_ok "an endpoint that answers, but not 200: exit 1 after the timeout, naming the status"
        diag "exit $PF_RC: $PF_OUT"
fi
pf_wait --url https://127.0.0.1:15021/
if [ "$PF_RC" = 1 ] && [[ "$PF_OUT" == *"--url"* ]]; then ok "a bad --url exits 1 naming --url"; else not_ok "a bad --url exits 1" "$PF_OUT"; fi
pf_wait --timeoutSeconds soon
if [ "$PF_RC" = 1 ] && [[ "$PF_OUT" == *"soon"* ]]; then ok "a bad --timeoutSeconds exits 1 naming the value"; else not_ok "a bad --timeoutSeconds exits 1" "$PF_OUT"; fi
proxy_stop "$PID" proxy "the proxy exits 0 on SIGTERM"
