#pragma once

int certs_main(int argc, char **argv);
int webhook_config_main(int argc, char **argv);
