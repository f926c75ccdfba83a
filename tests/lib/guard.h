/*
 * A guard page for parser tests (STYLE.md section 7, picohttpparser's test.c): input copied so
 * that it ends right before a PROT_NONE page, so a parser that reads one byte past its input
 * crashes instead of passing by luck.
 */
#pragma once

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
        char *page;             /* readable page, followed by a PROT_NONE one */
        size_t size;
};

/* Maps the two pages. Returns 0, or -1 with errno set. */
static inline int guard_init(struct guard *g)
{
        g->size = (size_t)sysconf(_SC_PAGESIZE);
        g->page = mmap(NULL, 2 * g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (g->page == MAP_FAILED)
                return -1;
        return mprotect(g->page + g->size, g->size, PROT_NONE);
}

/* Copies the n bytes at s (n at most a page) so that their last byte is the last one before
 * the PROT_NONE page; returns the copy, valid until the next call. */
static inline char *guard_copy(struct guard *g, const void *s, size_t n)
{
        char *p = g->page + g->size - n;

        memcpy(p, s, n);
        return p;
}
