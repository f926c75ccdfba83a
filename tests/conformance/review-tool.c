/*
 * review-tool: runs the webhook's AdmissionReview handling (webhook/review.c) on a request
 * file, without the HTTPS server around it, and prints the answer: the admission conformance
 * test drives the handler with every corpus request through it.
 *
 *   review-tool FILE [PATH] [--config FILE]      (PATH: the request path, default /inject)
 *
 * Exit status 0 whatever the answer says (the answer is the test's subject), 2 on usage or an
 * unreadable file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "inject/settings.h"
#include "webhook/review.h"

int main(int argc, char **argv)
{
        struct strbuf body = STRBUF_NULL, out = STRBUF_NULL;
        struct inject_config c;
        const char *path = "/inject", *config = NULL;
        char buf[65536], err[512];
        FILE *f;
        size_t n;

        if (argc < 2) {
                fprintf(stderr, "usage: review-tool FILE [PATH] [--config FILE]\n");
                return 2;
        }
        for (int i = 2; i < argc; i++) {
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
                        config = argv[++i];
                else
                        path = argv[i];
        }
        f = fopen(argv[1], "rb");
        if (!f) {
                fprintf(stderr, "review-tool: %s: %s\n", argv[1], strerror(errno));
                return 2;
        }
        body.limit = 64u << 20;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                strbuf_append(&body, buf, n);
        fclose(f);
        inject_config_init(&c);
        if (config && inject_config_load(&c, config, err, sizeof(err)) < 0) {
                fprintf(stderr, "review-tool: %s\n", err);
                return 2;
        }
        review_handle(&c, body.s ? body.s : "", body.len, path, &out);
        fputs(strbuf_str(&out), stdout);
        putchar('\n');
        strbuf_deinit(&body);
        strbuf_deinit(&out);
        inject_config_deinit(&c);
        return 0;
}
