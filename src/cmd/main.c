/*
 * pilotfish: one multi-call binary; everything but this function lives in libpilotfish.
 */
#include "cmd/dispatch.h"

int main(int argc, char **argv)
{
        return dispatch_main(argc, argv);
}
