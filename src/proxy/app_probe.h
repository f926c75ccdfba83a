/*
 * The application's own probes, run by the proxy. The injector points kubelet's readiness,
 * liveness and startup probes (and httpGet/tcpSocket lifecycle hooks) at the status port,
 * /app-health/<container>/readyz and so on, and hands the originals over in
 * ISTIO_KUBE_APP_PROBERS; GET on such a path runs the original probe from inside the pod and
 * answers with its outcome. That keeps kubelet's probes working when the pod's inbound traffic
 * is captured. A probe is a small non-blocking state machine on the admin's event loop (its
 * own thread, so a probe waiting on a slow application holds up no relay): connect, send one
 * HTTP/1.1 request, read the status line, all within the probe's timeout.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct loop;

enum app_probe_kind { APP_PROBE_HTTP, APP_PROBE_TCP };

struct app_probe_header {
        char *name, *value;
};

struct app_probe_spec {
        char *path;                     /* /app-health/hello/readyz */
        enum app_probe_kind kind;
        unsigned port;
        char *host;                     /* NULL: the pod's IP */
        char *http_path;                /* "/" when not given */
        bool https, grpc;               /* run as a TCP check (no TLS or HTTP/2 client here) */
        struct app_probe_header *headers;
        size_t n_headers;
        unsigned timeout_s;             /* kubelet's default is 1 */
};

struct app_probes {
        struct app_probe_spec *v;
        size_t n;
};

/* Parses ISTIO_KUBE_APP_PROBERS (NULL or empty: no probes). Returns 0 or -EINVAL with err. */
int app_probes_parse(const char *json, struct app_probes *ret, char *err, size_t errlen);
void app_probes_free(struct app_probes *t);
const struct app_probe_spec *app_probes_find(const struct app_probes *t, const char *path, size_t len);

/* Called once with the HTTP status to answer (the application's for an HTTP probe, 200 or
 * 500 for a TCP one) and a short text saying what happened. */
typedef void (*app_probe_done_fn)(void *ctx, int status, const char *why);

struct app_probe_run;

/*
 * Starts s on loop l against pod_ip (used when the probe names no host). Returns 0 with the
 * run in *ret, or, when it could not even start (done is then not called), a negative errno:
 * -EINVAL for a host that is not an IP address (kubelet resolves names; pilotfish does not),
 * -E2BIG for a request over 4 KiB, else what socket, connect, epoll or arming the probe's
 * timeout failed with (a probe never runs without its timeout). app_probe_cancel() ends a
 * run without calling done; a run that finished is freed by itself.
 */
int app_probe_start(struct loop *l, const struct app_probe_spec *s, const char *pod_ip, app_probe_done_fn done,
                    void *ctx, struct app_probe_run **ret);
void app_probe_cancel(struct app_probe_run *r);
