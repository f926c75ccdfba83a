/*
 * CHECK(cond): a fuzz target's invariant. A broken one prints where and what, then aborts, so
 * libFuzzer (or fuzz-main.c replaying the corpus) reports it like a crash.
 */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do { \
        if (!(cond)) { \
                fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
                abort(); \
        } \
} while (0)
