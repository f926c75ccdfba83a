/*
 * An RFC 6902 JSON Patch that turns one JSON tree into another: the webhook's answer is the
 * difference between the pod the API server sent and the injected pod (SEMANTICS.md section
 * 13). Diffing the two trees, rather than emitting edits as the injector makes them, means a
 * field pilotfish does not model can never be touched: it is the same in both.
 */
#pragma once

struct fy_node;
struct strbuf;

/*
 * Appends to out a JSON array of operations turning from into to. Mappings are compared key by
 * key; sequences keep their common head and tail and compare the middle item by item when it
 * has the same length, else remove the old middle and add the new one; anything else that
 * differs is replaced. Paths escape "~" as "~0" and "/" as "~1" (RFC 6901).
 */
void json_patch_diff(struct fy_node *from, struct fy_node *to, struct strbuf *out);
