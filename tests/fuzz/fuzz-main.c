/*
 * Standalone fuzz driver: calls the target's LLVMFuzzerTestOneInput() once per file named on
 * the command line (or once on stdin with no arguments), so every corpus file can be replayed
 * as an ordinary test without libFuzzer. This is what the "fuzz" test suite runs; builds with
 * -Dllvm-fuzz=true link libFuzzer's main instead (systemd src/fuzz/fuzz-main.c does the same).
 *
 * Each input is read into a heap buffer of exactly its size, so AddressSanitizer catches a
 * target reading one byte past the end. Exits 0 when every input ran, 1 when one could not
 * be read; a target crash or sanitizer report ends the process on its own.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads all of f into a malloc'ed buffer of exactly the data's size (NULL data for 0 bytes). */
static int read_all(FILE *f, uint8_t **ret, size_t *ret_size)
{
        uint8_t *buf = NULL, *exact;
        size_t len = 0, cap = 0;

        for (;;) {
                size_t n;
                if (len == cap) {
                        uint8_t *b = realloc(buf, cap ? cap * 2 : 4096);
                        if (!b) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = b;
                        cap = cap ? cap * 2 : 4096;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0)
                        break;
        }
        if (ferror(f)) {
                free(buf);
                return -EIO;
        }
        exact = len ? malloc(len) : NULL;
        if (len && !exact) {
                free(buf);
                return -ENOMEM;
        }
        if (len)
                memcpy(exact, buf, len);
        free(buf);
        *ret = exact;
        *ret_size = len;
        return 0;
}

static int run_one(const char *name, FILE *f)
{
        uint8_t *data;
        size_t size;
        int r = read_all(f, &data, &size);

        if (r < 0) {
                fprintf(stderr, "%s: %s\n", name, strerror(-r));
                return 1;
        }
        printf("%s: %zu bytes\n", name, size);
        fflush(stdout);
        LLVMFuzzerTestOneInput(data, size);
        free(data);
        printf("%s: ok\n", name);
        return 0;
}

int main(int argc, char **argv)
{
        int failed = 0;

        if (argc < 2)
                return run_one("<stdin>", stdin);
        for (int i = 1; i < argc; i++) {
                FILE *f = fopen(argv[i], "re");

                if (!f) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
                        failed = 1;
                        continue;
                }
                failed |= run_one(argv[i], f);
                fclose(f);
        }
        return failed;
}
