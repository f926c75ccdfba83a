/*
 * Fuzz target for proxy/metrics_identity.c: ISTIO_METAJSON_LABELS, the pod's labels as a JSON
 * object that the injector puts in the sidecar's environment (any label a user sets reaches
 * it), parsed with libfyaml in JSON mode. The input is the variable's value.
 *
 * Besides "no crash, no hang, no sanitizer report", the target checks what must hold for any
 * input:
 *   - a lookup returns the value's length (the value NUL-terminated in the buffer, shorter than
 *     it), -ENOENT, -EBADMSG or -ENAMETOOLONG (or -ENOMEM);
 *   - the whole object is judged, not the pair looked for: two lookups of different keys agree
 *     on -EBADMSG, and a found value never holds a NUL;
 *   - a too-small buffer gives -ENAMETOOLONG exactly when the value does not fit;
 *   - metrics_identity_from_env() with the input as ISTIO_METAJSON_LABELS fills every field
 *     with a NUL-terminated, non-empty value.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "proxy/metrics_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(int r, const char *buf, size_t size)
{
        CHECK(r >= 0 || r == -ENOENT || r == -EBADMSG || r == -ENAMETOOLONG || r == -ENOMEM);
        if (r >= 0) {
                CHECK((size_t)r < size);
                CHECK(strlen(buf) == (size_t)r);
        }
}

static void check_field(const char *f, size_t size)
{
        size_t n = strnlen(f, size);

        CHECK(n < size);
        CHECK(n > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *json = (const char *)data;
        char app[256] = "", version[256] = "", small[4] = "";
        struct metrics_identity id;
        char *var, *env[2];
        int ra, rv, rs;

        ra = json ? metrics_identity_json_label(json, size, "app", app, sizeof(app)) : -EBADMSG;
        check_result(ra, app, sizeof(app));
        rv = json ? metrics_identity_json_label(json, size, "version", version, sizeof(version)) : -EBADMSG;
        check_result(rv, version, sizeof(version));
        CHECK((ra == -EBADMSG) == (rv == -EBADMSG));
        if (json) {
                rs = metrics_identity_json_label(json, size, "app", small, sizeof(small));
                check_result(rs, small, sizeof(small));
                if (ra >= 0)
                        CHECK(ra < (int)sizeof(small) ? rs == ra && strcmp(small, app) == 0 : rs == -ENAMETOOLONG);
                else if (ra != -ENOMEM && rs != -ENOMEM)
                        CHECK(rs == ra);
        }

        /* The environment holds C strings: the value up to its first NUL. */
        var = malloc(sizeof("ISTIO_METAJSON_LABELS=") + size);
        CHECK(var);
        memcpy(var, "ISTIO_METAJSON_LABELS=", sizeof("ISTIO_METAJSON_LABELS=") - 1);
        if (size)
                memcpy(var + sizeof("ISTIO_METAJSON_LABELS=") - 1, data, size);
        var[sizeof("ISTIO_METAJSON_LABELS=") - 1 + size] = '\0';
        env[0] = var;
        env[1] = NULL;
        metrics_identity_from_env(env, &id);
        check_field(id.workload, sizeof(id.workload));
        check_field(id.namespace_, sizeof(id.namespace_));
        check_field(id.app, sizeof(id.app));
        check_field(id.version, sizeof(id.version));
        check_field(id.cluster, sizeof(id.cluster));
        free(var);
        return 0;
}
