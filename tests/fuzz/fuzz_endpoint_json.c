/* Fuzz the PublicEndpoint profile validation (evrec_endpoint_set_json, `evrec endpoint`). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = malloc(size + 1);
    if (!json)
        return 0;
    memcpy(json, data, size);
    json[size] = '\0';
    char err[256];
    endpoint_validate_json(json, size, err, sizeof err);
    free(json);
    return 0;
}
