#!/usr/bin/env bash
#
# 0154-proxy-scrape-10k: a scrape at the series limit is answered in full while relays keep
# being served (issue 11, section 2: with 9,000 distinct original destinations seen, `curl
# http://127.0.0.1:15090/stats/prometheus` got an empty reply, curl exit 52, because the body
# was built in one buffer and exceeded the admin's 16 MiB output limit).
#
#   pod a  eth0 198.18.0.1/24 ---- veth ---- eth0 198.18.0.2/24  pod b
#          capture rules (REDIRECT)                             nginx on 198.18.0.2:80
#          pilotfish proxy (uid 1337)                           nothing on 198.18.0.2:10000-19999
#          clients (uid 0)
#
# What it proves:
#   1. one request to nginx makes the first outbound series; then 10,000 connections to
#      198.18.0.2:10000..19999 (nothing listens: each upstream connect is refused, response
#      flags "UF") make 10,000 more distinct destinations, of which 9,999 get a series of their
#      own and the last one, past METRICS_MAX_SERIES (10,000), the destination_service="overflow"
#      series;
#   2. while a client loop keeps fetching a page from nginx through the proxy, curl scrapes
#      :15090/stats/prometheus (HTTP/1.1, so the body comes in chunks) and :15020 (HTTP/1.0, the
#      body up to the close) and the admin's /stats (JSON): curl exits 0, promtool check metrics
#      accepts the whole text, istio_tcp_connections_opened_total has exactly 10,001 samples, the
#      overflow one (opened 1, flags UF) among them, and the JSON is one document with as many;
#      A scraper that goes away mid-body costs nothing: the next scrapes are whole too;
#   3. every request of the client loop got the whole page, and some ran during the scrape;
#   4. the scrapes are streamed, not built whole: the proxy's peak resident memory (VmHWM) grew by
#      less than 8 MiB over all of them, each about 24 MB of text.
# The scrape is read at a limited rate (curl --limit-rate) so that it lasts long enough for
# requests to overlap it; nothing is asserted about how long anything takes.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/0109-proxy-lib.sh"
e2e_init
pf_need curl nginx promtool python3 jq
pf_backend

B=$PF_PODB
PORTS=10000
FIRST_PORT=10000

pods_new 4
apply_rules "pod a" a "$PF_BACKEND" "${PF_CAPTURE[@]}" || bail "capture rules in pod a"
nginx_start b web "$B:80"
head -c 20000 /dev/urandom | base64 -w 100 >"$E2E_TMP/web/www/page"
PAGE_SHA=$(sha "$E2E_TMP/web/www/page")
# Enough fds for the connections in flight at once, nothing like one per destination.
proxy_start a proxy-a --nofile 8192 -- sidecar --workers 2 || bail "proxy in pod a"

# 1. The series: nginx's first, then the 10,000 refused destinations.
code=$(http_code a "http://$B/page")
assert_eq "a request to nginx through the proxy answers 200" "$code" 200

cat >"$E2E_TMP/connect.py" <<'EOF'
# Connects to HOST:FIRST..FIRST+N-1, at most 256 at a time, and waits for each connection to
# end (the proxy resets or closes it once its upstream connect was refused); prints how many did.
import selectors, socket, sys
host, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sel = selectors.DefaultSelector()
port, open_, done = first, 0, 0
while done < n:
    while open_ < 256 and port < first + n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_READ)
        port += 1
        open_ += 1
    events = sel.select(timeout=30)
    if not events:
        break  # a connection the proxy never ended: the count below says how many did
    for key, _ in events:
        s = key.fileobj
        try:
            s.recv(1)
        except OSError:
            pass
        sel.unregister(s)
        s.close()
        open_ -= 1
        done += 1
print(done)
EOF
done_n=$(in_ns a python3 "$E2E_TMP/connect.py" "$B" "$FIRST_PORT" "$PORTS")
assert_eq "$PORTS connections to as many refused destinations ended" "$done_n" "$PORTS"
refused=$(wait_metric a pilotfish_connect_failures_total "$PORTS" 30 'cause="refused"')
assert_eq "the proxy counted $PORTS refused upstream connects" "$refused" "$PORTS"

# 2. The client loop, then the scrapes while it runs.
cat >"$E2E_TMP/loop.sh" <<EOF
#!/usr/bin/env bash
# Fetches the page until $E2E_TMP/stop exists; one line per request: "ok" or what went wrong.
while [ ! -e "$E2E_TMP/stop" ]; do
        if curl -sS --max-time 10 --noproxy '*' -o "$E2E_TMP/got" "http://$B/page" 2>>"$E2E_TMP/loop.err" &&
           [ "\$(sha256sum <"$E2E_TMP/got" | cut -d' ' -f1)" = "$PAGE_SHA" ]; then
                echo ok
        else
                echo "failed (curl \$?)"
        fi
done
EOF
chmod +x "$E2E_TMP/loop.sh"
ip netns exec "$(ns a)" "$E2E_TMP/loop.sh" >"$E2E_TMP/loop.log" 2>&1 {E2E_STDOUT}>&- {E2E_STDERR}>&- &
LOOP_PID=$!
E2E_PIDS+=("$LOOP_PID")
deadline=$((SECONDS + 10))
until [ -s "$E2E_TMP/loop.log" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done

# scrape DESC URL FILE [CURL-ARGS...]: one subtest that curl exits 0; the body in FILE.
scrape() {
        local desc=$1 url=$2 file=$3 rc
        shift 3
        in_ns a curl -sS --noproxy '*' --max-time 100 --limit-rate 8M "$@" -o "$file" "$url" 2>"$file.err"
        rc=$?
        assert_eq "$desc: curl exits 0" "$rc" 0 || diag_file "$file.err" "curl"
}

# vm KEY PID: VmHWM (peak) or VmRSS (now) of PID in KiB.
vm() {
        awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"
}
# The peak starts again from now (proc(5), clear_refs "5"), so what it reaches is the scrapes'.
echo 5 >"/proc/$PF_PID/clear_refs" || bail "cannot reset the proxy's VmHWM"
hwm_before=$(vm VmRSS "$PF_PID")
before=$(grep -c '' "$E2E_TMP/loop.log")
scrape "GET :15090/stats/prometheus (HTTP/1.1, chunked)" http://127.0.0.1:15090/stats/prometheus "$E2E_TMP/m15090" \
        -D "$E2E_TMP/m15090.head"
after=$(grep -c '' "$E2E_TMP/loop.log")
# A scraper that goes away after the first KiB: the proxy drops that stream and goes on.
in_ns a curl -sS --noproxy '*' --max-time 20 http://127.0.0.1:15090/stats/prometheus 2>/dev/null | head -c 1024 >/dev/null
assert_eq "after a scraper went away mid-body, /healthz/ready still answers 200" \
        "$(http_code a http://127.0.0.1:15021/healthz/ready)" 200
scrape "GET :15020/stats/prometheus (HTTP/1.0, until close)" http://127.0.0.1:15020/stats/prometheus \
        "$E2E_TMP/m15020" --http1.0 -D "$E2E_TMP/m15020.head"
scrape "GET :15000/stats (JSON)" http://127.0.0.1:15000/stats "$E2E_TMP/stats.json"
hwm_after=$(vm VmHWM "$PF_PID")
: >"$E2E_TMP/stop"
wait_exit "$LOOP_PID" 20

assert_contains "15090 answers HTTP/1.1 with chunks" "$(tr -d '\r' <"$E2E_TMP/m15090.head")" \
        "Transfer-Encoding: chunked"
assert_not_contains "15020 answers HTTP/1.0 without chunks" "$(tr -d '\r' <"$E2E_TMP/m15020.head")" \
        "Transfer-Encoding"
for f in m15090 m15020; do
        if out=$(promtool check metrics <"$E2E_TMP/$f" 2>&1); then
                ok "promtool check metrics accepts the whole $f text ($(wc -c <"$E2E_TMP/$f") bytes)"
        else
                not_ok "promtool check metrics accepts the whole $f text"
                diag "$(head -c 2000 <<<"$out")"
        fi
        assert_eq "$f: istio_tcp_connections_opened_total has 10,001 samples (10,000 series and overflow)" \
                "$(grep -c '^istio_tcp_connections_opened_total{' "$E2E_TMP/$f")" 10001
        assert_eq "$f: every family's # TYPE line comes once" \
                "$(grep '^# TYPE ' "$E2E_TMP/$f" | sort | uniq -d | wc -l)" 0
        assert_eq "$f: the overflow series counts the one refused destination past the limit" \
                "$(awk '/^istio_tcp_connections_opened_total\{/ && /destination_service="overflow"/ &&
                        /response_flags="UF"/ { print $NF }' "$E2E_TMP/$f")" 1
        assert_eq "$f: the other 9,999 refused destinations have series of their own" \
                "$(grep '^istio_tcp_connections_opened_total{' "$E2E_TMP/$f" | grep 'response_flags="UF"' |
                        grep -vc 'destination_service="overflow"')" 9999
done
assert_eq "the JSON of /stats is one document with 10,001 samples of istio_tcp_connections_opened_total" \
        "$(jq '.metrics[] | select(.name == "istio_tcp_connections_opened_total") | .samples | length' \
                "$E2E_TMP/stats.json" 2>&1)" 10001

# 3. The relays during all of that.
total=$(grep -c '' "$E2E_TMP/loop.log")
failed=$(grep -vc '^ok$' "$E2E_TMP/loop.log")
assert_eq "every request of the client loop got the whole page ($total requests)" "$failed" 0 ||
        diag_file "$E2E_TMP/loop.err" "client loop"
if [ "$after" -gt "$before" ]; then
        ok "requests ran during the 15090 scrape ($((after - before)) of them)"
else
        not_ok "requests ran during the 15090 scrape (before $before, after $after)"
fi
# 4. Memory: a scrape holds a piece at a time (64 KiB) and a pointer per series.
if [ -n "$hwm_before" ] && [ -n "$hwm_after" ] && [ $((hwm_after - hwm_before)) -lt 8192 ]; then
        ok "the proxy's peak RSS grew by $((hwm_after - hwm_before)) KiB over the scrapes, of $(($(wc -c <"$E2E_TMP/m15090") / 1024)) KiB of text each"
else
        not_ok "the proxy's peak RSS grew by less than 8 MiB over the scrapes (VmRSS $hwm_before -> VmHWM $hwm_after KiB)"
fi
proxy_stop "$PF_PID" proxy-a "the proxy in pod a drains and exits 0 on SIGTERM"
