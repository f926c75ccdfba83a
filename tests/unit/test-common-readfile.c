/*
 * Unit tests for common/readfile.c: every kind of file a user can name on the command line is
 * read whole and alike (regular file, pipe, FIFO, /dev/stdin, character device), the limit is
 * exact, and what cannot be read is refused with a negative errno. Writers are child
 * processes that write in pieces with pauses, so the reader meets short reads and waits, as
 * with `--config <(cat cfg.yaml)`; the pipe test writes more than a pipe holds.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/readfile.h"
#include "tap.h"

static char dir[] = "/tmp/test-readfile-XXXXXX";

static void sleep_ms(long ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The byte at offset i of the test pattern: not periodic in any small power of two. */
static char pattern(size_t i)
{
        return (char)('a' + (i * 7 + i / 251) % 26);
}

static bool is_pattern(const char *data, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (data[i] != pattern(i))
                        return false;
        return true;
}

/* In a child: writes len pattern bytes to fd in pieces of piece bytes, pausing pause_ms
 * before each, then exits. The parent's copy of fd is not touched. */
static pid_t writer(int fd, size_t len, size_t piece, long pause_ms)
{
        pid_t pid = fork();

        if (pid != 0)
                return pid;
        for (size_t off = 0; off < len;) {
                char buf[65536];
                size_t n = len - off < piece ? len - off : piece;

                if (n > sizeof(buf))
                        n = sizeof(buf);
                for (size_t i = 0; i < n; i++)
                        buf[i] = pattern(off + i);
                if (pause_ms)
                        sleep_ms(pause_ms);
                if (write(fd, buf, n) != (ssize_t)n)
                        _exit(1);
                off += n;
        }
        _exit(0);
}

static bool reap(pid_t pid)
{
        int status;

        return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int write_file(const char *path, const char *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        bool ok;

        if (fd < 0)
                return -errno;
        ok = write(fd, data, len) == (ssize_t)len;
        close(fd);
        return ok ? 0 : -EIO;
}

static void test_regular_file(void)
{
        char path[256], *data = NULL;
        const char text[] = "image: x/y:1\npolicy: enabled\n";
        struct stat st;
        size_t len = 0;
        int r;

        snprintf(path, sizeof(path), "%s/regular", dir);
        write_file(path, text, sizeof(text) - 1);
        r = readfile_path(path, 1024, &data, &len, &st);
        tap_ok(r == 0 && len == sizeof(text) - 1 && memcmp(data, text, len) == 0 && data[len] == '\0' &&
               S_ISREG(st.st_mode),
               "a regular file is read whole, NUL-terminated, and its stat says regular");
        free(data);
}

static void test_exact_limit(void)
{
        char path[256], buf[5000], *data = NULL;
        size_t len = 0;
        int r1, r2;

        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = pattern(i);
        snprintf(path, sizeof(path), "%s/limit", dir);
        write_file(path, buf, sizeof(buf));
        r1 = readfile_path(path, sizeof(buf), &data, &len, NULL);
        tap_ok(r1 == 0 && len == sizeof(buf) && is_pattern(data, len),
               "a file of exactly the limit (5000 bytes, past the first 4096-byte chunk) is read");
        free(data);
        data = NULL;
        r2 = readfile_path(path, sizeof(buf) - 1, &data, &len, NULL);
        tap_ok(r2 == -EFBIG && !data, "one byte over the limit is -EFBIG, and nothing is handed out");
}

static void test_empty_file(void)
{
        char path[256], *data = NULL;
        size_t len = 1;
        int r;

        snprintf(path, sizeof(path), "%s/empty", dir);
        write_file(path, "", 0);
        r = readfile_path(path, 1024, &data, &len, NULL);
        tap_ok(r == 0 && len == 0 && data && data[0] == '\0', "an empty file gives 0 bytes and an empty string, not NULL");
        free(data);
        data = NULL;
        r = readfile_path(path, 0, &data, &len, NULL);
        tap_ok(r == 0 && len == 0 && data, "... also with a limit of 0");
        free(data);
}

static void test_nul_bytes_kept(void)
{
        char path[256], *data = NULL;
        const char text[] = "a\0b\0";
        size_t len = 0;
        int r;

        snprintf(path, sizeof(path), "%s/nul", dir);
        write_file(path, text, 4);
        r = readfile_path(path, 1024, &data, &len, NULL);
        tap_ok(r == 0 && len == 4 && memcmp(data, text, 4) == 0, "NUL bytes in the data are kept and counted");
        free(data);
}

static void test_pipe(void)
{
        int p[2];
        char *data = NULL, path[64];
        size_t len = 0, total = 300000;         /* more than a pipe holds (64 KiB) */
        struct stat st;
        pid_t pid;
        int r;

        if (pipe2(p, O_CLOEXEC) < 0) {
                tap_ok(false, "pipe2: %s", strerror(errno));
                return;
        }
        pid = writer(p[1], total, 7000, 1);
        close(p[1]);
        r = readfile_fd(p[0], total, &data, &len);
        tap_ok(r == 0 && len == total && is_pattern(data, len) && reap(pid),
               "a pipe written in 7000-byte pieces with pauses is read whole (300,000 bytes, the limit)");
        close(p[0]);
        free(data);
        data = NULL;

        /* The shape of `--config <(cat cfg.yaml)`: a path in /dev/fd naming a pipe. */
        if (pipe2(p, 0) < 0)
                return;
        pid = writer(p[1], 100, 10, 5);
        close(p[1]);
        snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
        r = readfile_path(path, 1024, &data, &len, &st);
        tap_ok(r == 0 && len == 100 && is_pattern(data, len) && S_ISFIFO(st.st_mode) && reap(pid),
               "a pipe named by its /dev/fd/N path, written 10 bytes at a time, is read whole and stats as a FIFO");
        close(p[0]);
        free(data);
}

static void test_pipe_over_limit(void)
{
        int p[2];
        char *data = NULL;
        size_t len = 0;
        pid_t pid;
        int r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        pid = writer(p[1], 10000, 1000, 0);
        close(p[1]);
        r = readfile_fd(p[0], 9999, &data, &len);
        close(p[0]);            /* the writer may be blocked on the rest: this ends it (EPIPE) */
        waitpid(pid, NULL, 0);
        tap_ok(r == -EFBIG && !data, "a pipe with more than the limit is -EFBIG");
}

static void test_fifo(void)
{
        char path[256], *data = NULL;
        size_t len = 0;
        struct stat st;
        pid_t pid;
        int r;

        snprintf(path, sizeof(path), "%s/fifo", dir);
        if (mkfifo(path, 0600) < 0) {
                tap_ok(false, "mkfifo %s: %s", path, strerror(errno));
                return;
        }
        pid = fork();
        if (pid == 0) {
                /* The reader's open waits for this one. */
                int fd;

                sleep_ms(50);
                fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        _exit(1);
                _exit(reap(writer(fd, 20000, 3000, 2)) ? 0 : 1);
        }
        r = readfile_path(path, 20000, &data, &len, &st);
        tap_ok(r == 0 && len == 20000 && is_pattern(data, len) && S_ISFIFO(st.st_mode) && reap(pid),
               "a FIFO is waited for, read whole, and stats as a FIFO");
        free(data);
}

static void test_dev_stdin(void)
{
        int p[2], saved;
        char *data = NULL;
        size_t len = 0;
        pid_t pid;
        int r;

        if (pipe2(p, 0) < 0)
                return;
        saved = dup(STDIN_FILENO);
        dup2(p[0], STDIN_FILENO);
        close(p[0]);
        pid = writer(p[1], 5000, 500, 1);
        close(p[1]);
        r = readfile_path("/dev/stdin", 10000, &data, &len, NULL);
        dup2(saved, STDIN_FILENO);
        close(saved);
        tap_ok(r == 0 && len == 5000 && is_pattern(data, len) && reap(pid), "/dev/stdin on a pipe is read whole");
        free(data);
}

static void test_nonblocking(void)
{
        int p[2];
        char *data = NULL;
        size_t len = 0;
        pid_t pid;
        int r;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return;
        pid = writer(p[1], 1000, 100, 20);
        close(p[1]);
        r = readfile_fd(p[0], 1000, &data, &len);
        tap_ok(r == 0 && len == 1000 && is_pattern(data, len) && reap(pid),
               "a non-blocking pipe that is empty for a while (EAGAIN) is waited for and read whole");
        close(p[0]);
        free(data);
}

static void on_alarm(int sig)
{
        (void)sig;
}

static void test_eintr(void)
{
        struct sigaction sa = { .sa_handler = on_alarm }, old;    /* no SA_RESTART: read fails with EINTR */
        struct itimerval it = { .it_interval = { 0, 10000 }, .it_value = { 0, 10000 } }, off = { 0 };
        int p[2];
        char *data = NULL;
        size_t len = 0;
        pid_t pid;
        int r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        sigaction(SIGALRM, &sa, &old);
        pid = writer(p[1], 3000, 1000, 60);
        close(p[1]);
        setitimer(ITIMER_REAL, &it, NULL);
        r = readfile_fd(p[0], 3000, &data, &len);
        setitimer(ITIMER_REAL, &off, NULL);
        sigaction(SIGALRM, &old, NULL);
        tap_ok(r == 0 && len == 3000 && is_pattern(data, len) && reap(pid),
               "reads cut by a signal every 10 ms (EINTR) are retried and nothing is lost");
        close(p[0]);
        free(data);
}

static void test_char_devices(void)
{
        char *data = NULL;
        size_t len = 1;
        int r;

        r = readfile_path("/dev/null", 1024, &data, &len, NULL);
        tap_ok(r == 0 && len == 0 && data, "/dev/null (a character device) reads as empty");
        free(data);
        data = NULL;
        r = readfile_path("/dev/zero", 100000, &data, &len, NULL);
        tap_ok(r == -EFBIG && !data, "/dev/zero (endless) stops at the limit with -EFBIG");
}

static void test_refused(void)
{
        char path[256], *data = NULL;
        size_t len = 0;
        int r;

        r = readfile_path(dir, 1024, &data, &len, NULL);
        tap_ok(r == -EISDIR && !data, "a directory is refused with -EISDIR");
        snprintf(path, sizeof(path), "%s/missing", dir);
        r = readfile_path(path, 1024, &data, &len, NULL);
        tap_ok(r == -ENOENT && !data, "a missing file is -ENOENT");
        r = readfile_fd(-1, 1024, &data, &len);
        tap_ok(r == -EBADF && !data, "a bad fd is -EBADF");
        r = readfile_fd(STDIN_FILENO, SIZE_MAX, &data, &len);
        tap_ok(r == -EINVAL && !data, "a limit of SIZE_MAX is -EINVAL (no room for the terminator)");
}

static void test_strerror(void)
{
        char buf[128];

        TAP_STREQ(readfile_strerror(-EFBIG, 1u << 20, buf, sizeof(buf)), "larger than the limit of 1 MiB",
                  "-EFBIG names the limit in MiB");
        TAP_STREQ(readfile_strerror(-EFBIG, 4096, buf, sizeof(buf)), "larger than the limit of 4 KiB",
                  "... in KiB");
        TAP_STREQ(readfile_strerror(-EFBIG, 100, buf, sizeof(buf)), "larger than the limit of 100 bytes",
                  "... in bytes");
        TAP_STREQ(readfile_strerror(-ENOENT, 100, buf, sizeof(buf)), "No such file or directory",
                  "other errors are strerror's text");
}

int main(void)
{
        char cmd[300];

        if (!mkdtemp(dir)) {
                tap_skip_all("mkdtemp failed");
                return 0;
        }
        test_regular_file();
        test_exact_limit();
        test_empty_file();
        test_nul_bytes_kept();
        test_pipe();
        test_pipe_over_limit();
        test_fifo();
        test_dev_stdin();
        test_nonblocking();
        test_eintr();
        test_char_devices();
        test_refused();
        test_strerror();
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", dir);
        return tap_done();
}
