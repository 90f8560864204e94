/*
 * The CLI's JSON reader (tools/evrec/pyjson.c, which reads every --events-request, file:// and
 * answer) on PutEvents documents of 10,000 and 100,000 events, as a ratio: the cost per event
 * of the large document against the small one. 1.0 is linear; a lookup of each key among the
 * ones before it (how duplicate keys used to be found) shows as ~10.
 * Exit status 1 if the ratio is over 4.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pyjson.h"

static char *document(size_t events)
{
    sbuf_t b = { 0 };
    sb_puts(&b, "{\"BatchItem\": {\"dev1\": {\"Endpoint\": {}, \"Events\": {");
    for (size_t i = 0; i < events; i++)
        sb_printf(&b, "%s\"event-%zu\": {\"EventType\": \"click\", \"Timestamp\": "
                      "\"2024-01-01T00:00:00Z\", \"Attributes\": {\"k\": \"v\"}}",
                  i ? ", " : "", i);
    sb_puts(&b, "}}}}");
    char *s = strdup(sb_str(&b));
    sb_free(&b);
    return s;
}

static double seconds_per_event(size_t events, int rounds)
{
    char *doc = document(events);
    size_t len = strlen(doc);
    struct timespec a, z;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    for (int r = 0; r < rounds; r++) {
        cJSON *v = NULL;
        char err[256];
        if (pyjson_parse(doc, len, &v, err, sizeof err) != 0) {
            fprintf(stderr, "parse failed: %s\n", err);
            exit(2);
        }
        cJSON_Delete(v);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &z);
    free(doc);
    return ((double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9) /
           ((double)events * rounds);
}

int main(void)
{
    double small = seconds_per_event(10000, 10);
    double large = seconds_per_event(100000, 1);
    double ratio = large / small;
    printf("CLI JSON reader, per event: 100,000 events / 10,000 events = %.2f (1.0 linear)\n",
           ratio);
    return ratio > 4.0 ? 1 : 0;
}
