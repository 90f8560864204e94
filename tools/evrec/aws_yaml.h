/* YAML input for --cli-input-yaml, read with libyaml and resolved as the AWS CLI's YAML 1.2
 * safe loader does (null, booleans, integers, floats; everything else a string). */
#ifndef EVREC_CLI_AWS_YAML_H
#define EVREC_CLI_AWS_YAML_H

#include <stddef.h>
#include <cjson/cJSON.h>

/** Parse one YAML document. Returns 0 and *out, or -1 with libyaml's message in err. */
int aws_yaml_load(const char *text, size_t len, cJSON **out, char *err, size_t errlen);

#endif
