/* Fuzz the SigV4 signer with arbitrary requests: the input is a raw HTTP request (request
 * line, header lines, blank line, body) as in the AWS test suite's .req files. Every stage
 * must either refuse the input or produce a well-formed result; sigv4_sign must agree with
 * the stage functions run over the same header set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evrec.h"
#include "port.h"
#include "sigv4.h"

#define MAX_HEADERS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* request line: METHOD SP target; the target splits at '?' */
    char *method = text, *path = NULL, *query = NULL, *p = strchr(text, '\n');
    if (p)
        *p++ = '\0';
    char *sp = strchr(method, ' ');
    if (sp) {
        *sp = '\0';
        path = sp + 1;
        char *q = strchr(path, '?');
        if (q) {
            *q = '\0';
            query = q + 1;
        }
    }
    sigv4_header_t hs[MAX_HEADERS];
    size_t n = 0;
    const char *body = "";
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (*p == '\0') {
            body = nl ? nl + 1 : "";
            break;
        }
        char *colon = strchr(p, ':');
        if (colon && n < MAX_HEADERS) {
            *colon = '\0';
            hs[n].name = p;
            hs[n].value = colon + 1;
            n++;
        }
        p = nl ? nl + 1 : NULL;
    }

    sigv4_request_t r = { .method = method, .path = path, .query = query, .headers = hs,
                          .nheaders = n, .body = body, .body_len = strlen(body) };
    sigv4_params_t prm = { .region = "us-east-1", .service = "service",
                           .unix_ms = 1440938160000LL, .no_path_normalize = (size & 1) != 0 };
    sigv4_credentials_t c = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL };
    char *creq = NULL, *sts = NULL, *authz = NULL;
    if (sigv4_canonical_request(&r, &prm, &creq) == EVREC_OK) {
        if (sigv4_string_to_sign(creq, &prm, &sts) != EVREC_OK ||
            sigv4_authorization(sts, creq, &prm, &c, NULL, &authz) != EVREC_OK)
            abort(); /* a canonical request always signs */
        if (strncmp(authz, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"
                           "service/aws4_request, SignedHeaders=", 95) != 0)
            abort();
    }
    sigv4_signature_t sig;
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    if (sigv4_sign(&cache, &r, &prm, &c, &sig) == EVREC_OK && strlen(sig.signature) != 64)
        abort();
    port_free(creq);
    port_free(sts);
    port_free(authz);
    free(text);
    return 0;
}
