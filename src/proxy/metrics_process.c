/*
 * Process figures; see metrics_process.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/prom.h"
#include "proxy/metrics_process.h"

/* Reads a small /proc file whole; returns its length or a negative errno. */
static ssize_t metrics_process_read_file(const char *path, char *buf, size_t size)
{
        size_t len = 0;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (len + 1 < size) {
                n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        n = -errno;
                        close(fd);
                        return n;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        close(fd);
        buf[len] = '\0';
        return (ssize_t)len;
}

/* btime from /proc/stat: boot time in seconds since the epoch, or -1. */
static long long metrics_process_boot_time(void)
{
        long long btime = -1;
        char *line = NULL;
        size_t cap = 0;
        FILE *f;

        f = fopen("/proc/stat", "re");
        if (!f)
                return -1;
        while (getline(&line, &cap, f) > 0) {
                if (sscanf(line, "btime %lld", &btime) == 1)
                        break;
        }
        free(line);
        fclose(f);
        return btime;
}

static void metrics_process_stat(struct metrics_process *ret)
{
        unsigned long long v[24] = { 0 };
        long ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
        long long btime;
        char buf[4096], *p, *end;
        size_t n = 0;

        if (metrics_process_read_file("/proc/self/stat", buf, sizeof(buf)) < 0)
                return;
        /* The command name may hold spaces and parentheses: fields start after the last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return;
        p += 2;
        /* Field 3 is the state letter; v[i] is then field i + 4 (see proc(5)). */
        p = strchr(p, ' ');
        while (p && n < 24) {
                v[n] = strtoull(p, &end, 10);
                if (end == p)
                        break;
                p = end;
                n++;
        }
        if (n < 21)
                return;
        ret->virtual_bytes = (int64_t)v[19];                    /* field 23, vsize */
        if (page > 0)
                ret->resident_bytes = (int64_t)v[20] * page;    /* field 24, rss in pages */
        btime = metrics_process_boot_time();
        if (btime >= 0 && ticks > 0)                            /* field 22, starttime in ticks */
                ret->start_time_seconds = (double)btime + (double)v[18] / (double)ticks;
}

static void metrics_process_fds(struct metrics_process *ret)
{
        struct dirent *de;
        int64_t n = 0;
        DIR *d;
        int self;

        d = opendir("/proc/self/fd");
        if (!d)
                return;
        self = dirfd(d);
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                if (atoi(de->d_name) == self)
                        continue;
                n++;
        }
        closedir(d);
        ret->open_fds = n;
}

int metrics_process_read(struct metrics_process *ret)
{
        struct rusage ru;
        struct rlimit rl;

        ret->cpu_seconds = -1;
        ret->start_time_seconds = -1;
        ret->resident_bytes = -1;
        ret->virtual_bytes = -1;
        ret->open_fds = -1;
        ret->max_fds = -1;

        if (getrusage(RUSAGE_SELF, &ru) == 0)
                ret->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                ret->max_fds = (int64_t)rl.rlim_cur;
        metrics_process_fds(ret);
        metrics_process_stat(ret);
        return 0;
}

/* The standard names and help texts of the Prometheus client libraries' process collector. */
void metrics_process_print(const struct metrics_process *proc, struct prom_printer *p)
{
        if (proc->cpu_seconds >= 0) {
                prom_family(p, "process_cpu_seconds_total", "counter",
                            "Total user and system CPU time spent in seconds.");
                prom_sample(p, NULL, 0, PROM_F64(proc->cpu_seconds));
        }
        if (proc->open_fds >= 0) {
                prom_family(p, "process_open_fds", "gauge", "Number of open file descriptors.");
                prom_sample(p, NULL, 0, PROM_I64(proc->open_fds));
        }
        if (proc->max_fds >= 0) {
                prom_family(p, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
                prom_sample(p, NULL, 0, PROM_I64(proc->max_fds));
        }
        if (proc->virtual_bytes >= 0) {
                prom_family(p, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
                prom_sample(p, NULL, 0, PROM_I64(proc->virtual_bytes));
        }
        if (proc->resident_bytes >= 0) {
                prom_family(p, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
                prom_sample(p, NULL, 0, PROM_I64(proc->resident_bytes));
        }
        if (proc->start_time_seconds >= 0) {
                prom_family(p, "process_start_time_seconds", "gauge",
                            "Start time of the process since unix epoch in seconds.");
                prom_sample(p, NULL, 0, PROM_F64(proc->start_time_seconds));
        }
}
