/*
 * Reading a whole data file (corpus goldens, observed dumps) into a NUL-terminated heap
 * string, for the unit tests. Returns NULL when the file cannot be read; the caller frees.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

static inline char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (!f)
                return NULL;
        for (;;) {
                size_t n;

                if (cap - len < 4096) {
                        char *nb = realloc(buf, cap + 65536);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                        cap += 65536;
                }
                n = fread(buf + len, 1, cap - len - 1, f);
                len += n;
                if (n == 0)
                        break;
        }
        fclose(f);
        buf[len] = '\0';
        return buf;
}
