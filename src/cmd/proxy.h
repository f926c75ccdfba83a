/*
 * `pilotfish proxy`: the sidecar. See docs/cli/proxy.md.
 */
#pragma once

int proxy_main(int argc, char **argv);
