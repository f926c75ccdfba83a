/*
 * String vectors; see strv.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/strv.h"

/* Slots allocated for n items plus the NULL terminator: the next power of two, so that n
 * pushes cost O(n) copies in all (no capacity field to keep in step). */
static size_t strv_slots(size_t n)
{
        size_t slots = 2;

        while (slots < n + 1)
                slots *= 2;
        return slots;
}

int strv_push_take(struct strv *sv, char *s)
{
        char **v = sv->v;

        if (!s)
                return -ENOMEM;
        if (!v || strv_slots(sv->n + 1) != strv_slots(sv->n)) {
                v = realloc(sv->v, strv_slots(sv->n + 1) * sizeof(*v));
                if (!v) {
                        free(s);
                        return -ENOMEM;
                }
                sv->v = v;
        }
        v[sv->n++] = s;
        v[sv->n] = NULL;
        return 0;
}

int strv_push(struct strv *sv, const char *s)
{
        return strv_push_take(sv, strdup(s));
}

int strv_split(struct strv *sv, const char *s, char sep)
{
        while (s && *s) {
                const char *end = strchr(s, sep);
                size_t len = end ? (size_t)(end - s) : strlen(s);

                if (len > 0) {
                        int r = strv_push_take(sv, strndup(s, len));
                        if (r < 0)
                                return r;
                }
                if (!end)
                        break;
                s = end + 1;
        }
        return 0;
}

bool strv_contains(const struct strv *sv, const char *s)
{
        for (size_t i = 0; i < sv->n; i++)
                if (strcmp(sv->v[i], s) == 0)
                        return true;
        return false;
}

int strv_copy(struct strv *dst, const struct strv *src)
{
        for (size_t i = 0; i < src->n; i++) {
                int r = strv_push(dst, src->v[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

void strv_deinit(struct strv *sv)
{
        for (size_t i = 0; i < sv->n; i++)
                free(sv->v[i]);
        free(sv->v);
        sv->v = NULL;
        sv->n = 0;
}
