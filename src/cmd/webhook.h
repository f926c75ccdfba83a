#pragma once

int webhook_main(int argc, char **argv);
