/*
 * The subcommand table: one entry per subcommand drives both dispatch and `pilotfish --help`
 * (the wireguard-tools wg.c pattern). main() only calls dispatch_main().
 */
#pragma once

struct subcommand {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
};

/* Runs the subcommand named by argv[1], or by argv[0]'s basename for a multi-call link. */
int dispatch_main(int argc, char **argv);
