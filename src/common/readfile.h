/*
 * Reading a whole input file into memory: the one way every user-given path is read (config
 * files, manifests, certificates, keys, resolv.conf). The input may be a regular file, a pipe
 * (`--config <(...)`, /dev/stdin), a FIFO or a character device, and all are read the same
 * way: read(2) in a loop until end of file, into a buffer that grows up to a limit the caller
 * sets. Never mmap(2) and never st_size, which are what go wrong on a pipe (libfyaml 0.7.12's
 * fy_document_build_from_file crashed on `--config <(cat cfg.yaml)`); parsers then work on
 * the buffer.
 */
#pragma once

#include <stddef.h>

struct stat;

/*
 * Opens path read-only (a FIFO's open waits for a writer, as cat(1) does) and reads it with
 * readfile_fd(). A directory is refused with -EISDIR. When ret_st is not NULL it receives
 * fstat(2) of the opened file, taken before reading: its type says whether the path can be
 * read again (a regular file) or was consumed (a pipe), and its times whether it changed.
 * Returns 0 with *ret_data and *ret_len set, or a negative errno (nothing to free then).
 */
int readfile_path(const char *path, size_t limit, char **ret_data, size_t *ret_len, struct stat *ret_st);

/*
 * Reads fd to its end into a new heap buffer: up to limit bytes, -EFBIG when there is more.
 * EINTR is retried; on a non-blocking fd, EAGAIN waits with poll(2). The fd is neither
 * closed nor rewound. On success *ret_data (the caller frees it) holds *ret_len bytes plus a
 * NUL terminator not counted in *ret_len, so text parsers may use it as a string; it is never
 * NULL, even for an empty input. The data may itself hold NUL bytes. Returns 0, -EFBIG,
 * -ENOMEM, -EINVAL for a limit of SIZE_MAX / 2 or more, or read(2)'s negative errno.
 */
int readfile_fd(int fd, size_t limit, char **ret_data, size_t *ret_len);

/*
 * Why a readfile call failed, for a message: strerror's text, except for -EFBIG, which
 * names the limit ("larger than the limit of 1 MiB"). Written to buf (returned).
 */
const char *readfile_strerror(int r, size_t limit, char *buf, size_t len);
