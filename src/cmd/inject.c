/*
 * `pilotfish inject -f FILE [-o FILE] [--config FILE]`: the offline injector, what
 * `istioctl kube-inject -f` is to Istio. The whole input is read first and the whole output
 * built in memory, so that a failure anywhere writes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/inject.h"
#include "common/flags.h"
#include "common/readfile.h"
#include "common/strbuf.h"
#include "inject/settings.h"
#include "inject/stream.h"

#define INPUT_MAX (64u << 20)

extern char **environ;

struct inject_args {
        const char *in, *out, *config;
        bool help;
};

#define O(f) offsetof(struct inject_args, f)
/* istioctl kube-inject's names for the input and the output (cobra: -f/--filename,
 * -o/--output); --config is pilotfish's. */
static const struct flags_opt opts[] = {
        { .name = "filename", .short_name = 'f', .metavar = "FILE", .offset = O(in),
          .help = "the input; - reads standard input" },
        { .name = "output", .short_name = 'o', .metavar = "FILE", .offset = O(out),
          .help = "write here instead of standard output" },
        { .name = "config", .metavar = "FILE", .offset = O(config),
          .help = "the injector configuration (YAML; see docs/cli/inject.md)" },
        { .name = "help", .short_name = 'h', .kind = FLAGS_BOOL, .offset = O(help), .help = "this text" },
};
#undef O
static const struct flags_table table = FLAGS_TABLE(opts, FLAGS_PFLAG, NULL);

static void usage(FILE *f)
{
        fprintf(f, "Usage: pilotfish inject -f FILE [-o FILE] [--config FILE]\n\n"
                   "Adds pilotfish's sidecar to the workloads in FILE (YAML or JSON, one or many documents;\n"
                   "- for standard input) and writes them as YAML to standard output.\n\n");
        flags_usage(&table, f);
        fprintf(f, "\nEnvironment: ENABLE_NATIVE_SIDECARS=true|false (the config file's nativeSidecars wins).\n");
}

/* The input, whole: standard input for "-", else any file, pipe or FIFO (common/readfile.h). */
static int read_input(const char *path, char **ret_data, size_t *ret_len, char *err, size_t errlen)
{
        bool in = strcmp(path, "-") == 0;
        char why[128];
        int r = in ? readfile_fd(STDIN_FILENO, INPUT_MAX, ret_data, ret_len)
                   : readfile_path(path, INPUT_MAX, ret_data, ret_len, NULL);

        if (r < 0)
                snprintf(err, errlen, "reading %s: %s", in ? "standard input" : path,
                         readfile_strerror(r, INPUT_MAX, why, sizeof(why)));
        return r;
}

static int write_all(const char *path, const struct strbuf *b, char *err, size_t errlen)
{
        int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : STDOUT_FILENO;
        size_t off = 0;

        if (fd < 0) {
                snprintf(err, errlen, "opening %s: %s", path, strerror(errno));
                return -errno;
        }
        while (off < b->len) {
                ssize_t n = write(fd, b->s + off, b->len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        snprintf(err, errlen, "writing %s: %s", path ? path : "standard output", strerror(errno));
                        if (path)
                                close(fd);
                        return -errno;
                }
                off += (size_t)n;
        }
        if (path && close(fd) < 0) {
                snprintf(err, errlen, "writing %s: %s", path, strerror(errno));
                return -errno;
        }
        return 0;
}

int inject_main(int argc, char **argv)
{
        struct inject_args args = { 0 };
        const char *in, *outpath, *config;
        struct strbuf out = STRBUF_NULL, notes = STRBUF_NULL, errs = STRBUF_NULL;
        char *input = NULL;
        size_t input_len = 0;
        struct inject_config c;
        char err[1024];
        int rc = 1, r = flags_parse_main(&table, &args, argc, argv, &args.help, usage);

        if (r != 0)
                return r < 0 ? 1 : 0;
        in = args.in;
        outpath = args.out;
        config = args.config;
        if (!in) {
                fprintf(stderr, "Error: filename not specified (see --filename or -f)\n");
                return 1;
        }

        inject_config_init(&c);
        if (inject_config_env(&c, environ, err, sizeof(err)) < 0 ||
            (config && inject_config_load(&c, config, err, sizeof(err)) < 0)) {
                fprintf(stderr, "Error: %s\n", err);
                goto out;
        }
        if (read_input(in, &input, &input_len, err, sizeof(err)) < 0) {
                fprintf(stderr, "Error: %s\n", err);
                goto out;
        }
        r = inject_stream(&c, strcmp(in, "-") == 0 ? "<stdin>" : in, input, input_len, &out, &notes, &errs);
        if (notes.len)
                fputs(strbuf_str(&notes), stderr);
        if (r < 0) {
                fprintf(stderr, "Error: nothing written:\n%s", strbuf_str(&errs));
                goto out;
        }
        if (write_all(outpath, &out, err, sizeof(err)) < 0) {
                fprintf(stderr, "Error: %s\n", err);
                goto out;
        }
        rc = 0;
out:
        free(input);
        strbuf_deinit(&out);
        strbuf_deinit(&notes);
        strbuf_deinit(&errs);
        inject_config_deinit(&c);
        return rc;
}
