/*
 * The access log: one line per connection when it closes (direction, client, original
 * destination, upstream address, bytes each way, duration, termination cause, response flag),
 * as text or JSON, on stdout. Off by default (--access-log).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct relay;

/* Writes r's line; now_ms is the loop's clock. Called from the relay's worker thread. */
void access_log_write(const struct relay *r, bool json, uint64_t now_ms);
