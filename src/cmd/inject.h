#pragma once

int inject_main(int argc, char **argv);
