#define _GNU_SOURCE
#include "fakecreds.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *python(void)
{
    const char *p = getenv("EVREC_PYTHON");
    return p && *p ? p : "python3";
}

int fc_make_pki(const char *dir)
{
    char *script = tu_root_path("tools/fake_credentials.py");
    const char *argv[] = { python(), script, "--gen-certs", dir, NULL };
    char *err = NULL;
    int rc = tu_run(argv, NULL, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "fake_credentials.py --gen-certs failed (%d): %s\n", rc, err ? err : "");
    free(err);
    free(script);
    return rc;
}

int fc_start(tu_endpoint_t *ep, const char *tls_dir, const char *const *extra)
{
    const char *argv[32];
    int n = 0;
    if (tls_dir) {
        argv[n++] = "--tls-dir";
        argv[n++] = tls_dir;
    }
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return tu_server_start(ep, "tools/fake_credentials.py", argv);
}

char *fc_file(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    char **b = ud;
    size_t old = *b ? strlen(*b) : 0;
    char *nb = realloc(*b, old + sz * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + old, p, sz * n);
    nb[old + sz * n] = '\0';
    *b = nb;
    return sz * n;
}

/* A control request with plain libcurl (independent of the transport under test). */
static char *control(const tu_endpoint_t *ep, const char *tls_dir, const char *method,
                     const char *path)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", ep->url, path);
    CURL *c = curl_easy_init();
    char *body = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    char *ca = tls_dir ? fc_file(tls_dir, "ca.pem") : NULL;
    if (ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    free(ca);
    if (rc != CURLE_OK) {
        free(body);
        return NULL;
    }
    return body;
}

long fc_stat(const tu_endpoint_t *ep, const char *tls_dir, const char *name)
{
    char *body = control(ep, tls_dir, "GET", "/_fake/stats");
    cJSON *j = body ? cJSON_Parse(body) : NULL;
    free(body);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    long out = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(j);
    return out;
}

int fc_config(const tu_endpoint_t *ep, const char *tls_dir, const char *query)
{
    char path[256];
    snprintf(path, sizeof path, "/_fake/config?%s", query);
    char *body = control(ep, tls_dir, "POST", path);
    int rc = body ? 0 : -1;
    free(body);
    return rc;
}

int fc_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int port = -1;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s); /* nothing listens there now */
    return port;
}
