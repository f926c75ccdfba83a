/*
 * Small helpers over libfyaml's document trees for the injector: look a key up, get or create
 * a child mapping or sequence, replace a value, find a list item by its "name", and build new
 * nodes from YAML flow text. New nodes are built from text rather than node by node because a
 * string such as "15001" or "true" must stay a string: the text quotes it, and libfyaml keeps
 * the quoting when it emits the document. Parsing and emitting stay libfyaml's job.
 */
#pragma once

#include "common/json.h"

#include <stdbool.h>
#include <stddef.h>

struct fy_document;
struct fy_node;
struct fy_node_pair;
struct strbuf;

/* The value of key in mapping map; NULL when map is not a mapping or has no such key. */
struct fy_node *yaml_get(struct fy_node *map, const char *key);
/* Orders two keys given as bytes and lengths (memcmp, then the shorter first). */
int yaml_keycmp(const char *a, size_t alen, const char *b, size_t blen);
/* The pair whose scalar key is the len bytes at key; NULL when there is none. */
struct fy_node_pair *yaml_pair(struct fy_node *map, const char *key, size_t len);
/* The text of a scalar node (NUL-terminated, owned by the node); NULL for anything else. */
const char *yaml_str(struct fy_node *n);
/* The text of map[key] when it is a scalar, else NULL. */
const char *yaml_get_str(struct fy_node *map, const char *key);
/* Whether n is YAML's null: absent, or a plain scalar that is empty, ~, null, Null or NULL
 * (libfyaml 0.7.12's fy_node_is_null() says so only for the empty one). */
bool yaml_is_null(struct fy_node *n);
bool yaml_is_map(struct fy_node *n);
bool yaml_is_seq(struct fy_node *n);

/* map[key] as a mapping (or sequence), created empty when absent or null. NULL on error or
 * when map[key] is something else. */
struct fy_node *yaml_map_child(struct fy_document *d, struct fy_node *map, const char *key);
struct fy_node *yaml_seq_child(struct fy_document *d, struct fy_node *map, const char *key);

/* Sets map[key] = value (value is consumed, also on error). Returns 0 or -ENOMEM/-EINVAL. */
int yaml_set(struct fy_document *d, struct fy_node *map, const char *key, struct fy_node *value);
/* Sets map[key] to the string s (quoted when it would read as something else). */
int yaml_set_str(struct fy_document *d, struct fy_node *map, const char *key, const char *s);
/* Removes map[key] if present. */
void yaml_remove(struct fy_document *d, struct fy_node *map, const char *key);

/* The item of sequence seq whose "name" is name, or NULL. */
struct fy_node *yaml_seq_find_named(struct fy_node *seq, const char *name);

/* Appends s to b as a YAML flow scalar: plain when that reads back as the same string,
 * double-quoted (JSON escapes) otherwise. */
void yaml_flow_str(struct strbuf *b, const char *s);
/* A scalar's text and length without the copy yaml_str makes to add a NUL; NULL for anything
 * else. Owned by the node. */
const char *yaml_scalar(struct fy_node *n, size_t *len);
/* Whether JSON keeps the scalar n (text s, len bytes) unquoted: a plain true, false or number. */
bool yaml_json_raw(struct fy_node *n, const char *s, size_t len);
/* Appends n to b as compact JSON (plain numbers and booleans stay unquoted). */
void yaml_to_json(struct strbuf *b, struct fy_node *n);
/*
 * How untrusted text is parsed: libfyaml's own duplicate-key check compares every new key with
 * every earlier one (a 4 MiB mapping of 300,000 keys took hours), so it is off and yaml_repair
 * does the check in O(n log n) after the parse.
 */
#define YAML_PARSE_FLAGS (FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS)
/*
 * After a parse of text (len bytes) into d with YAML_PARSE_FLAGS (inject/yaml_repair.c): true,
 * with why, when d must be refused: two equal scalar keys in a mapping ("duplicate key "K" at
 * line L, column C"; JSON and YAML both forbid it, Kubernetes rejects it), a list or mapping
 * as a key (a Kubernetes object's keys are strings), or out of memory.
 * Else d is repaired where libfyaml 0.7.12 misreads it: single-line single-quoted scalars with
 * two or more '' escapes in a row become double-quoted ones holding the right text.
 */
bool yaml_repair(struct fy_document *d, const char *text, size_t len, struct strbuf *why);
/* Before d is written as YAML: empty sequence items become an explicit null, which libfyaml
 * 0.7.12 can read back (it refuses the "-" alone it writes for them). 0, or -ENOMEM. */
int yaml_fix_empty_items(struct fy_document *d);
/* Parses untrusted text into a document: UTF-8 checked first, libfyaml's diagnostics kept out
 * of stderr; on failure NULL, with what was wrong appended to why. */
struct fy_document *yaml_parse_quiet(const char *text, size_t len, struct strbuf *why);
/* Builds a node of d from YAML (flow) text; NULL on a parse error or out of memory. */
struct fy_node *yaml_build(struct fy_document *d, const char *text);
