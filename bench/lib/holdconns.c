/*
 * holdconns: opens N idle TCP connections to one address and holds them, so that the
 * benchmark can read a proxy's resident memory with N connections open.
 *
 *   holdconns ADDR PORT COUNT SECONDS
 *
 * Connects COUNT times (blocking connects, one after the other), sends nothing, prints
 * "held COUNT" on stdout once every connect has succeeded, then keeps the sockets open until
 * SECONDS have passed or it gets SIGTERM/SIGINT, and exits 0. It exits 1 on the first failed
 * connect. Bounded in count (at most 100000) and time (at most 600 s); the benchmark only ever
 * points it at a 198.18.0.0/15 address in a namespace it created.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

int main(int argc, char **argv)
{
        struct sockaddr_in a = { .sin_family = AF_INET };
        struct sigaction sa = { .sa_handler = on_signal };
        struct rlimit rl;
        long count, seconds;
        int *fds;

        if (argc != 5 || inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
                fprintf(stderr, "usage: holdconns IPV4 PORT COUNT SECONDS\n");
                return 2;
        }
        a.sin_port = htons((uint16_t)atoi(argv[2]));
        count = atol(argv[3]);
        seconds = atol(argv[4]);
        if (count < 1 || count > 100000 || seconds < 1 || seconds > 600) {
                fprintf(stderr, "holdconns: COUNT must be 1..100000 and SECONDS 1..600\n");
                return 2;
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)count + 16) {
                rl.rlim_cur = (rlim_t)count + 16;
                if (rl.rlim_max < rl.rlim_cur)
                        rl.rlim_max = rl.rlim_cur;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        fprintf(stderr, "holdconns: raising RLIMIT_NOFILE to %ld: %s\n", count + 16, strerror(errno));
                        return 1;
                }
        }
        fds = calloc((size_t)count, sizeof(*fds));
        if (!fds)
                return 1;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGALRM, &sa, NULL);
        alarm((unsigned)seconds);
        for (long i = 0; i < count && !stop; i++) {
                fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0) {
                        fprintf(stderr, "holdconns: connection %ld to %s:%s: %s\n", i + 1, argv[1], argv[2],
                                strerror(errno));
                        return 1;
                }
        }
        if (stop)
                return 1;
        printf("held %ld\n", count);
        fflush(stdout);
        while (!stop)
                pause();
        return 0;
}
