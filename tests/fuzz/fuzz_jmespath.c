/* Fuzz the JMESPath lexer, parser and evaluator (the CLI's --query). Input: an expression,
 * a NUL or newline, then an optional JSON document to search. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jmespath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *doc_text = NULL;
    for (size_t i = 0; i < size; i++) {
        if (buf[i] == '\n' || buf[i] == '\0') {
            buf[i] = '\0';
            doc_text = buf + i + 1;
            break;
        }
    }
    cJSON *doc = doc_text ? cJSON_Parse(doc_text) : NULL;
    if (!doc)
        doc = cJSON_Parse("{\"a\":[1,2,{\"b\":\"c\"}],\"d\":{\"e\":null,\"f\":[[1],[2,3]]}}");
    cJSON *result = NULL;
    char err[256];
    if (jp_search(buf, doc, &result, err, sizeof err) == 0) {
        char *printed = cJSON_PrintUnformatted(result);
        free(printed);
        cJSON_Delete(result);
    }
    cJSON_Delete(doc);
    free(buf);
    return 0;
}
