/*
 * Whole-file reading; see readfile.h. The buffer starts small and doubles, capped at one byte
 * over the limit: reading that byte is how "too large" is told apart from "exactly the limit"
 * without asking the file its size, which a pipe does not know.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/readfile.h"

#define READFILE_FIRST_CHUNK 4096

int readfile_fd(int fd, size_t limit, char **ret_data, size_t *ret_len)
{
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int r;

        if (limit >= SIZE_MAX / 2)
                return -EINVAL;
        for (;;) {
                ssize_t n;

                if (len == cap) {
                        /* cap <= limit here, so the new cap is larger: there is room to read. */
                        size_t want = cap ? cap * 2 : READFILE_FIRST_CHUNK;
                        char *b;

                        if (want > limit + 1)
                                want = limit + 1;
                        b = realloc(buf, want + 1);     /* + the NUL terminator */
                        if (!b) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        buf = b;
                        cap = want;
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };

                        if (poll(&p, 1, -1) < 0 && errno != EINTR) {
                                r = -errno;
                                goto fail;
                        }
                        continue;
                }
                if (n < 0) {
                        r = -errno;
                        goto fail;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > limit) {
                        r = -EFBIG;
                        goto fail;
                }
        }
        buf[len] = '\0';
        *ret_data = buf;
        *ret_len = len;
        return 0;
fail:
        free(buf);
        return r;
}

int readfile_path(const char *path, size_t limit, char **ret_data, size_t *ret_len, struct stat *ret_st)
{
        struct stat st;
        int fd, r;

        do
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        while (fd < 0 && errno == EINTR);       /* a FIFO's open waits, and a signal may cut it */
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (S_ISDIR(st.st_mode))
                r = -EISDIR;
        else
                r = readfile_fd(fd, limit, ret_data, ret_len);
        close(fd);
        if (r == 0 && ret_st)
                *ret_st = st;
        return r;
}

const char *readfile_strerror(int r, size_t limit, char *buf, size_t len)
{
        if (r != -EFBIG)
                snprintf(buf, len, "%s", strerror(-r));
        else if (limit >= (1u << 20) && limit % (1u << 20) == 0)
                snprintf(buf, len, "larger than the limit of %zu MiB", limit >> 20);
        else if (limit >= 1024 && limit % 1024 == 0)
                snprintf(buf, len, "larger than the limit of %zu KiB", limit >> 10);
        else
                snprintf(buf, len, "larger than the limit of %zu bytes", limit);
        return buf;
}
