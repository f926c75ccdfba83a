/*
 * libfyaml helpers; see yaml.h.
 */
#include <errno.h>
#include <libfyaml.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/strbuf.h"
#include "common/utf8.h"
#include "inject/build_cache.h"
#include "inject/yaml.h"

struct fy_node_pair *yaml_pair(struct fy_node *map, const char *key, size_t len)
{
        struct fy_node_pair *p;
        void *iter = NULL;

        if (!map || !fy_node_is_mapping(map))
                return NULL;
        /* A walk comparing the keys' text: libfyaml's own lookup compares through its atom
         * iterators and was a tenth of an injection. */
        while ((p = fy_node_mapping_iterate(map, &iter))) {
                size_t kl;
                const char *k = yaml_scalar(fy_node_pair_key(p), &kl);

                if (k && kl == len && memcmp(k, key, len) == 0)
                        return p;
        }
        return NULL;
}

int yaml_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
        int r = memcmp(a, b, alen < blen ? alen : blen);

        return r ? r : (alen > blen) - (alen < blen);
}

struct fy_node *yaml_get(struct fy_node *map, const char *key)
{
        struct fy_node_pair *p = yaml_pair(map, key, strlen(key));

        return p ? fy_node_pair_value(p) : NULL;
}

const char *yaml_str(struct fy_node *n)
{
        if (!n || !fy_node_is_scalar(n) || fy_node_is_alias(n))
                return NULL;
        return fy_node_get_scalar0(n);
}

const char *yaml_get_str(struct fy_node *map, const char *key)
{
        return yaml_str(yaml_get(map, key));
}

bool yaml_is_map(struct fy_node *n)
{
        return n && fy_node_is_mapping(n);
}

bool yaml_is_seq(struct fy_node *n)
{
        return n && fy_node_is_sequence(n);
}

bool yaml_is_null(struct fy_node *n)
{
        const char *s;

        if (!n)
                return true;
        if (!fy_node_is_scalar(n))
                return false;
        /* A plain empty value or null/~ (a key written with nothing after it). */
        if (fy_node_get_style(n) != FYNS_PLAIN)
                return false;
        s = fy_node_get_scalar0(n);
        return !s || !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
               strcmp(s, "NULL") == 0;
}

static struct fy_node *child(struct fy_document *d, struct fy_node *map, const char *key, bool seq)
{
        struct fy_node *n = yaml_get(map, key);

        if (!yaml_is_map(map))
                return NULL;
        if (n && !yaml_is_null(n))
                return (seq ? fy_node_is_sequence(n) : fy_node_is_mapping(n)) ? n : NULL;
        n = seq ? fy_node_create_sequence(d) : fy_node_create_mapping(d);
        if (!n || yaml_set(d, map, key, n) < 0)
                return NULL;
        return n;
}

struct fy_node *yaml_map_child(struct fy_document *d, struct fy_node *map, const char *key)
{
        return child(d, map, key, false);
}

struct fy_node *yaml_seq_child(struct fy_document *d, struct fy_node *map, const char *key)
{
        return child(d, map, key, true);
}

int yaml_set(struct fy_document *d, struct fy_node *map, const char *key, struct fy_node *value)
{
        struct fy_node_pair *p;
        struct fy_node *k;

        if (!value)
                return -ENOMEM;
        if (!yaml_is_map(map)) {
                fy_node_free(value);
                return -EINVAL;
        }
        p = yaml_pair(map, key, strlen(key));
        if (p)
                return fy_node_pair_set_value(p, value) == 0 ? 0 : -ENOMEM;
        k = fy_node_create_scalar_copy(d, key, strlen(key));
        if (!k || fy_node_mapping_append(map, k, value) != 0) {
                fy_node_free(k);
                fy_node_free(value);
                return -ENOMEM;
        }
        return 0;
}

static bool plain_safe(const char *s);

int yaml_set_str(struct fy_document *d, struct fy_node *map, const char *key, const char *s)
{
        struct strbuf b = STRBUF_NULL;
        struct fy_node *n;

        /* A string that reads back as itself needs no parser: a created scalar is plain. */
        if (plain_safe(s))
                return yaml_set(d, map, key, fy_node_create_scalar_copy(d, s, strlen(s)));
        yaml_flow_str(&b, s);
        n = b.error ? NULL : yaml_build(d, strbuf_str(&b));
        strbuf_deinit(&b);
        return yaml_set(d, map, key, n);
}

void yaml_remove(struct fy_document *d, struct fy_node *map, const char *key)
{
        struct fy_node *k;

        if (!yaml_get(map, key))
                return;
        /* remove_by_key frees the pair and the key given (a different node from the pair's). */
        k = fy_node_create_scalar_copy(d, key, strlen(key));
        if (k)
                fy_node_free(fy_node_mapping_remove_by_key(map, k));
}

struct fy_node *yaml_seq_find_named(struct fy_node *seq, const char *name)
{
        struct fy_node *it;
        void *iter = NULL;

        if (!yaml_is_seq(seq))
                return NULL;
        while ((it = fy_node_sequence_iterate(seq, &iter))) {
                const char *n = yaml_get_str(it, "name");
                if (n && strcmp(n, name) == 0)
                        return it;
        }
        return NULL;
}

/* Words YAML 1.1 or 1.2 would read as a boolean or null (Kubernetes' own YAML is 1.1). */
static bool reserved_word(const char *s)
{
        static const char *const words[] = { "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~" };

        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return true;
        return false;
}

static bool plain_safe(const char *s)
{
        bool digits_only = true;

        if (!*s || reserved_word(s))
                return false;
        /* First character: nothing YAML treats as an indicator, and not a sign or digit. */
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '/' || *s == '$'))
                return false;
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-' || c == '.' || c == '/' || c == '$' || c == '(' || c == ')' || c == '='))
                        return false;
                if (!(c >= '0' && c <= '9'))
                        digits_only = false;
        }
        /* ".inf", ".nan" and friends start with a letter check above; numbers cannot. */
        return !digits_only;
}

const char *yaml_scalar(struct fy_node *n, size_t *len)
{
        const char *s;

        if (!n || !fy_node_is_scalar(n) || fy_node_is_alias(n) || !(s = fy_node_get_scalar(n, len)))
                return NULL;
        return s;
}

/* A plain scalar JSON keeps unquoted: true, false, or a number strtod reads whole. */
bool yaml_json_raw(struct fy_node *n, const char *s, size_t len)
{
        char small[64], *buf, *end;
        bool digit = false, whole;

        if (!s || fy_node_get_style(n) != FYNS_PLAIN)
                return false;
        if ((len == 4 && !memcmp(s, "true", 4)) || (len == 5 && !memcmp(s, "false", 5)))
                return true;
        for (size_t i = 0; i < len; i++) {
                if (!s[i] || !strchr("-0123456789.eE+", s[i]))
                        return false;
                digit = digit || (s[i] >= '0' && s[i] <= '9');
        }
        if (!digit)
                return false;
        buf = len < sizeof(small) ? small : malloc(len + 1);
        if (!buf)
                return false;
        memcpy(buf, s, len);
        buf[len] = '\0';
        strtod(buf, &end);
        whole = *end == '\0';
        if (buf != small)
                free(buf);
        return whole;
}

void yaml_flow_str(struct strbuf *b, const char *s)
{
        if (plain_safe(s))
                strbuf_puts(b, s);
        else
                json_str(b, s);
}

struct fy_node *yaml_build(struct fy_document *d, const char *text)
{
        int memo;
        struct fy_node *n = build_cache_build(d, text, &memo);
        char *copy;

        if (memo)
                return n;
        copy = strdup(text);
        if (!copy)
                return NULL;
        /* libfyaml frees the copy with the document. */
        return fy_node_build_from_malloc_string(d, copy, (size_t)-1);
}

void yaml_to_json(struct strbuf *b, struct fy_node *n)
{
        void *iter = NULL;

        if (!n || fy_node_is_null(n)) {
                strbuf_puts(b, "null");
        } else if (fy_node_is_mapping(n)) {
                struct fy_node_pair *p;
                bool first = true;

                strbuf_puts(b, "{");
                while ((p = fy_node_mapping_iterate(n, &iter))) {
                        size_t kl = 0;
                        const char *k = yaml_scalar(fy_node_pair_key(p), &kl);

                        strbuf_puts(b, first ? "" : ",");
                        json_strn(b, k ? k : "", k ? kl : 0);
                        strbuf_puts(b, ":");
                        yaml_to_json(b, fy_node_pair_value(p));
                        first = false;
                }
                strbuf_puts(b, "}");
        } else if (fy_node_is_sequence(n)) {
                struct fy_node *it;
                bool first = true;

                strbuf_puts(b, "[");
                while ((it = fy_node_sequence_iterate(n, &iter))) {
                        strbuf_puts(b, first ? "" : ",");
                        yaml_to_json(b, it);
                        first = false;
                }
                strbuf_puts(b, "]");
        } else {
                size_t len = 0;
                const char *s = yaml_scalar(n, &len);

                /* A plain number or boolean stays one; anything else is a string. */
                if (yaml_json_raw(n, s, len))
                        strbuf_append(b, s, len);
                else
                        json_strn(b, s ? s : "", s ? len : 0);
        }
}

static void diag_to_strbuf(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
        struct strbuf *b = user;

        /* The first error only, first line only: "<source>:LINE:COL: error: what". Warnings (an
         * unknown %directive) come first and are not the reason. */
        const char *nl = memchr(buf, '\n', len);      /* buf is not NUL-terminated */
        size_t line = nl ? (size_t)(nl - buf) : len;

        if (b->len || !memmem(buf, line, ": error: ", 9))
                return;
        strbuf_append(b, buf, line);
}

struct fy_document *yaml_parse_quiet(const char *text, size_t len, struct strbuf *why)
{
        struct fy_diag_cfg dcfg;
        struct fy_diag *diag;
        struct fy_document *d = NULL;
        struct strbuf msg = STRBUF_NULL;
        size_t bad;

        if (len == 0) {
                strbuf_puts(why, "empty input");
                return NULL;
        }
        if (memchr(text, '\0', len)) {
                strbuf_printf(why, "a NUL byte at byte %zu", (size_t)((const char *)memchr(text, '\0', len) - text) + 1);
                return NULL;
        }
        /* YAML text is Unicode, and libfyaml 0.7 can loop forever on some malformed input (a
         * directive followed by stray continuation bytes, found by the fuzzer): nothing that
         * is not well-formed UTF-8 reaches it. */
        bad = utf8_invalid_at(text, len);
        if (bad < len) {
                strbuf_printf(why, "byte %zu is not UTF-8", bad + 1);
                return NULL;
        }
        fy_diag_cfg_default(&dcfg);
        dcfg.fp = NULL;
        dcfg.output_fn = diag_to_strbuf;
        dcfg.user = &msg;
        dcfg.colorize = false;
        diag = fy_diag_create(&dcfg);
        if (diag)
                d = fy_document_build_from_string(&(struct fy_parse_cfg){ .flags = YAML_PARSE_FLAGS, .diag = diag }, text, len);
        if (d && yaml_repair(d, text, len, why)) {
                fy_document_destroy(d);
                d = NULL;
        } else if (!d) {
                /* libfyaml's own words after "error: ", else ours: never the rest of its line,
                 * which starts with the source name ("<memory-@0xADDRESS-...>", a heap address
                 * that a warning taken for the reason once put in the webhook's answers). */
                const char *at = strstr(strbuf_str(&msg), "error: ");
                strbuf_puts(why, at ? at + 7 : "not valid YAML or JSON");
        }
        if (diag)
                fy_diag_unref(diag);
        strbuf_deinit(&msg);
        return d;
}
