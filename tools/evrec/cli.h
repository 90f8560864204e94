/* The CLI's command table. Each command is a cmd_<name>.c file defining cli_cmd_<name>. */
#ifndef EVREC_CLI_H
#define EVREC_CLI_H

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command_t;

/* Add a command here and in its own cmd_<name>.c. */
#define CLI_COMMANDS                                                                       \
    CLI_CMD(version)                                                                       \
    CLI_CMD(pinpoint)                                                                      \
    CLI_CMD(personalize_events)                                                            \
    CLI_CMD(kinesis)                                                                       \
    CLI_CMD(firehose)                                                                      \
    CLI_CMD(record)                                                                        \
    CLI_CMD(stats)                                                                         \
    CLI_CMD(status)                                                                        \
    CLI_CMD(queue)                                                                         \
    CLI_CMD(endpoint)                                                                      \
    CLI_CMD(flush)                                                                         \
    CLI_CMD(agent)

#define CLI_CMD(name) extern const cli_command_t cli_cmd_##name;
CLI_COMMANDS
#undef CLI_CMD

/** The AWS CLI-compatible commands, given the arguments after the program name: global
 *  options may come before the service name (`evrec --region r pinpoint put-events ...`). */
int cli_aws_main(int argc, char **argv);

#endif
