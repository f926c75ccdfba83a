/*
 * `pilotfish iptables`: Istio's istio-iptables. See docs/cli/iptables.md.
 */
#pragma once

int iptables_main(int argc, char **argv);
