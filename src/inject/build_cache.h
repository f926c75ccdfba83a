/*
 * A per-thread memo of yaml_build: text already parsed once is copied from its first tree
 * instead of parsed again. The webhook's answer for a pod builds the proxy's container from a
 * few kilobytes of flow text, and pods created in a burst (a Deployment scaled up, a rollout)
 * build the same text again and again: parsing it cost two thirds of an injection, copying a
 * tree costs a tenth of parsing it (both measured, libfyaml 0.7.12).
 *
 * Per thread because libfyaml's trees share tokens by reference counts that are not atomic: a
 * copy made in one thread must never be freed while another thread copies the same tree.
 */
#pragma once

struct fy_document;
struct fy_node;

/* Starts the memo of the calling thread, keeping the last `entries` texts (at most 64). */
void build_cache_begin(unsigned entries);
/* Frees the calling thread's memo (every tree copied from it stays valid). */
void build_cache_end(void);
/*
 * yaml_build through the memo: a copy, in d, of text's tree. *used says whether the memo was
 * active; when it is not, nothing is done and NULL returned.
 */
struct fy_node *build_cache_build(struct fy_document *d, const char *text, int *used);
