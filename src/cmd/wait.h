#pragma once

int wait_main(int argc, char **argv);
