/* Fuzz the shared config/credentials file parser (creds_ini_get), as the credentials file and
 * as the config file, for a few profiles and keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static const char *const profiles[] = { "default", "dev", "profile dev", "" };
    static const char *const keys[] = { "aws_access_key_id", "aws_secret_access_key",
                                        "aws_session_token", "region", "" };
    char out[256];
    for (int cfg = 0; cfg < 2; cfg++)
        for (size_t p = 0; p < sizeof profiles / sizeof profiles[0]; p++)
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                creds_ini_get(text, cfg, profiles[p], keys[k], out, sizeof out);
    char tiny[2];
    creds_ini_get(text, 0, "default", "region", tiny, sizeof tiny);
    free(text);
    return 0;
}
