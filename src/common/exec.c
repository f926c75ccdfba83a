/*
 * fork/exec with pipes for stdin, stdout and stderr, multiplexed with poll() so a child that
 * writes a lot of output while we still feed it input cannot deadlock either side.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/exec.h"
#include "common/strbuf.h"

extern char **environ;

/* In the child: on any failure, the errno goes up the close-on-exec status pipe, which the
 * parent reads as "could not run" (a successful exec closes it with nothing written). */
static void exec_child(const char *const *argv, const struct exec_options *opts, int in_fd,
                       int out_fd, int err_fd, int status_fd)
{
        int saved_errno;

        if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                goto fail;
        if (opts && opts->env_extra)
                for (const char *const *e = opts->env_extra; *e; e++)
                        putenv((char *)*e);
        if (opts && opts->private_mounts) {
                /*
                 * CNI mode: a private mount namespace in which /etc/nsswitch.conf is /dev/null,
                 * so xt_owner's name lookups cannot reach a remote NSS service. Best effort, as
                 * Istio does: if it fails the command still runs.
                 */
                if (unshare(CLONE_NEWNS) == 0 &&
                    (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 ||
                     mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) == 0))
                        (void)mount("/dev/null", "/etc/nsswitch.conf", NULL, MS_BIND, NULL);
        }
        execvp(argv[0], (char *const *)argv);
fail:
        saved_errno = errno;
        if (write(status_fd, &saved_errno, sizeof(saved_errno)) < 0)
                _exit(127);
        _exit(127);
}

int exec_run(const char *const *argv, const struct exec_options *opts, struct exec_result *ret)
{
        int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 }, st_p[2] = { -1, -1 };
        struct strbuf out = STRBUF_NULL, err = STRBUF_NULL;
        const char *in = opts && opts->stdin_text ? opts->stdin_text : "";
        size_t in_len = strlen(in), in_off = 0;
        int r, status, child_errno = 0;
        pid_t pid;

        ret->status = -1;
        ret->out = ret->err = NULL;

        if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 ||
            pipe2(err_p, O_CLOEXEC) < 0 || pipe2(st_p, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }

        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto out;
        }
        if (pid == 0)
                exec_child(argv, opts, in_p[0], out_p[1], err_p[1], st_p[1]);

        close(in_p[0]), in_p[0] = -1;
        close(out_p[1]), out_p[1] = -1;
        close(err_p[1]), err_p[1] = -1;
        close(st_p[1]), st_p[1] = -1;
        if (in_len == 0)
                close(in_p[1]), in_p[1] = -1;

        /* Writing to a child that exited must not kill us. */
        signal(SIGPIPE, SIG_IGN);

        while (out_p[0] >= 0 || err_p[0] >= 0) {
                struct pollfd pfd[3] = {
                        { .fd = out_p[0], .events = POLLIN },
                        { .fd = err_p[0], .events = POLLIN },
                        { .fd = in_p[1], .events = POLLOUT },
                };
                char buf[16384];

                if (poll(pfd, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        int *fd = i == 0 ? &out_p[0] : &err_p[0];
                        struct strbuf *b = i == 0 ? &out : &err;
                        ssize_t n;

                        if (*fd < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        n = read(*fd, buf, sizeof(buf));
                        if (n > 0)
                                strbuf_append(b, buf, (size_t)n);
                        else if (n == 0 || errno != EINTR)
                                close(*fd), *fd = -1;
                }
                if (in_p[1] >= 0 && (pfd[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t n = write(in_p[1], in + in_off, in_len - in_off);
                        if (n > 0)
                                in_off += (size_t)n;
                        if (n < 0 && errno != EINTR && errno != EAGAIN)
                                in_off = in_len;
                        if (in_off >= in_len)
                                close(in_p[1]), in_p[1] = -1;
                }
        }

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        status = 127 << 8;
                        break;
                }
        ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r = 0;
        while (read(st_p[0], &child_errno, sizeof(child_errno)) < 0 && errno == EINTR)
                ;
        if (child_errno)
                r = -child_errno;
out:
        for (int i = 0; i < 2; i++) {
                if (in_p[i] >= 0) close(in_p[i]);
                if (out_p[i] >= 0) close(out_p[i]);
                if (err_p[i] >= 0) close(err_p[i]);
                if (st_p[i] >= 0) close(st_p[i]);
        }
        ret->out = strbuf_steal(&out);
        ret->err = strbuf_steal(&err);
        if (!ret->out || !ret->err)
                r = r < 0 ? r : -ENOMEM;
        return r;
}

void exec_result_deinit(struct exec_result *r)
{
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
}

char *exec_argv_join(const char *const *argv)
{
        struct strbuf b = STRBUF_NULL;

        for (size_t i = 0; argv[i]; i++) {
                if (i)
                        strbuf_puts(&b, " ");
                strbuf_puts(&b, argv[i]);
        }
        return strbuf_steal(&b);
}
