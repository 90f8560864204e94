/* evrec — the command-line tool. Subcommands live in their own files (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "evrec.h"
#include "cli.h"

static const cli_command_t *const commands[] = {
#define CLI_CMD(name) &cli_cmd_##name,
    CLI_COMMANDS
#undef CLI_CMD
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: evrec [--help] [--version] <command> [options]\n"
            "\n"
            "An on-device event recorder for Amazon Kinesis Data Streams, Amazon Data Firehose,\n"
            "Amazon Pinpoint and Amazon Personalize Events.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-20s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(out, "\nRun 'evrec <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    /* no command, or one evrec does not have: the AWS CLI's usage error (exit 252) */
    if (argc < 2)
        return cli_aws_main(0, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("evrec %s\n", evrec_version());
        return 0;
    }
    /* AWS CLI global options may precede the service name */
    if (argv[1][0] == '-' && argv[1][1] == '-' && argv[1][2])
        return cli_aws_main(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i]->name) == 0)
            return commands[i]->run(argc - 1, argv + 1);
    }
    return cli_aws_main(argc - 1, argv + 1);
}
