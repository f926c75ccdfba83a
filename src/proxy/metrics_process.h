/*
 * The standard process_* figures of the Prometheus client libraries' process collector (CPU
 * time, memory, file descriptors, start time), read from /proc/self, getrusage() and
 * getrlimit() at scrape time, so nothing is sampled in the background.
 */
#pragma once

#include <stdint.h>

struct prom_printer;

/*
 * Process figures, read at scrape time. A figure that could not be read is negative and is
 * left out of the output.
 */
struct metrics_process {
        double cpu_seconds;             /* user + system, all threads */
        double start_time_seconds;      /* since the Unix epoch */
        int64_t resident_bytes;
        int64_t virtual_bytes;
        int64_t open_fds;
        int64_t max_fds;                /* soft RLIMIT_NOFILE; negative when unlimited */
};

/*
 * Reads this process's figures from /proc/self and getrusage()/getrlimit(). Always returns 0;
 * a figure that cannot be read is set negative.
 */
int metrics_process_read(struct metrics_process *ret);
/* Prints the figures that could be read, with the collector's names and help texts. */
void metrics_process_print(const struct metrics_process *proc, struct prom_printer *p);
