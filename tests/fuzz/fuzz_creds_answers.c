/* Fuzz what the credential providers parse from outside: STS's XML answer (creds_xml_text),
 * the JSON of credential_process, container endpoints and IMDS (creds_from_json), and a
 * credential_process command line (creds_split_command). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static const char *const names[] = { "Credentials", "AccessKeyId", "SessionToken",
                                         "Expiration", "Code", "Message", "" };
    char out[256], tiny[2];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        creds_xml_text(text, size, names[i], out, sizeof out);
        creds_xml_text(text, size, names[i], tiny, sizeof tiny);
    }
    evrec_credentials_t creds;
    char why[256];
    for (int flags = 0; flags < 4; flags++)
        creds_from_json(text, size, 1764000000000LL, flags & 1 ? 1764000000000LL : 0, flags,
                        "fuzz", &creds, why, sizeof why);
    char words[512], *argv[16];
    creds_split_command(text, words, sizeof words, argv, 16);
    free(text);
    return 0;
}
