#include <stdio.h>

#include "cli.h"
#include "evrec.h"

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("evrec %s\n", evrec_version());
    return 0;
}

const cli_command_t cli_cmd_version = { "version", "print the version", run };
