/*
 * SigV4 against the AWS test suite, stage by stage, plus the signing-key cache.
 *
 * Every case folder under tests/data/aws4_testsuite (AWS's suite as botocore distributes it,
 * Apache-2.0, kept in the repository; nested ones included) is found at run time; its .req is parsed here and the canonical request, string to sign and
 * Authorization value are compared with the folder's .creq, .sts and .authz. The constants
 * (keys, time, region, service) are read from the suite's README table.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>
#include <errno.h>
#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include "evrec.h"
#include "port.h"
#include "sigv4.h"

/* -- the suite's files ------------------------------------------------------------------- */

/* The suite in this repository: $EVREC_ROOT (set by the Makefile) or the working directory. */
static char *suite_dir(void)
{
    const char *root = getenv("EVREC_ROOT");
    char *p = NULL;
    int n = asprintf(&p, "%s/tests/data/aws4_testsuite", root && *root ? root : ".");
    return n < 0 ? NULL : p;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static char *case_file(const char *dir, const char *name, const char *ext)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s.%s", dir, name, ext) < 0)
        return NULL;
    char *s = slurp(p);
    free(p);
    /* The expected files end without a newline; tolerate one added by an editor. */
    if (s && strcmp(ext, "req") != 0) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '\n')
            s[--n] = '\0';
    }
    return s;
}

typedef struct suite_constants {
    char access_key[64], secret[128], time[32], region[32], service[32];
    int64_t unix_ms;
} suite_constants_t;

/* The value of the README table row whose first column is `what` (`backquoted`). */
static int readme_value(const char *readme, const char *what, char *out, size_t len)
{
    char row[128];
    snprintf(row, sizeof row, "| %s |", what);
    const char *r = strstr(readme, row);
    if (!r)
        return -1;
    const char *a = strchr(r + strlen(row), '`');
    const char *b = a ? strchr(a + 1, '`') : NULL;
    if (!b || (size_t)(b - a - 1) >= len)
        return -1;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return 0;
}

static int64_t amz_to_ms(const char *t)
{
    struct tm tm = { 0 };
    if (sscanf(t, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static void load_constants(const char *suite, suite_constants_t *c)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/README.md", suite) > 0);
    char *readme = slurp(path);
    free(path);
    assert_non_null(readme);
    assert_int_equal(readme_value(readme, "access key id", c->access_key, sizeof c->access_key), 0);
    assert_int_equal(readme_value(readme, "secret access key", c->secret, sizeof c->secret), 0);
    assert_int_equal(readme_value(readme, "request time", c->time, sizeof c->time), 0);
    assert_int_equal(readme_value(readme, "region", c->region, sizeof c->region), 0);
    assert_int_equal(readme_value(readme, "service", c->service, sizeof c->service), 0);
    free(readme);
    c->unix_ms = amz_to_ms(c->time);
    assert_true(c->unix_ms > 0);
}

/* -- parsing a raw request -------------------------------------------------------------- */

#define MAX_HEADERS 32

typedef struct raw_request {
    char *buf; /* owns every string below */
    char *method, *path, *query;
    sigv4_header_t headers[MAX_HEADERS];
    char *values[MAX_HEADERS]; /* malloc'ed values (folded lines joined with '\n') */
    size_t nheaders;
    const char *body;
    size_t body_len;
} raw_request_t;

static void raw_free(raw_request_t *r)
{
    for (size_t i = 0; i < r->nheaders; i++)
        free(r->values[i]);
    free(r->buf);
    memset(r, 0, sizeof *r);
}

static int raw_parse(char *text, raw_request_t *r)
{
    memset(r, 0, sizeof *r);
    r->buf = text;
    char *eol = strchr(text, '\n');
    char *end = eol ? eol : text + strlen(text);
    char *line_end = end;
    if (line_end > text && line_end[-1] == '\r')
        line_end--;
    /* Request line: METHOD SP target SP HTTP/x.y, where the target may itself hold spaces. */
    char *sp = memchr(text, ' ', (size_t)(line_end - text));
    char *ver = NULL;
    for (char *p = line_end - 1; p > text; p--)
        if (*p == ' ') {
            ver = p;
            break;
        }
    if (!sp || !ver || ver <= sp)
        return -1;
    *sp = '\0';
    *ver = '\0';
    r->method = text;
    r->path = sp + 1;
    char *q = strchr(r->path, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }
    char *p = eol ? eol + 1 : end;
    while (eol && *p) {
        char *nl = strchr(p, '\n');
        char *le = nl ? nl : p + strlen(p);
        if (le == p) { /* the empty line: the body follows */
            r->body = p + 1;
            r->body_len = strlen(p + 1);
            break;
        }
        *le = '\0';
        if ((*p == ' ' || *p == '\t') && r->nheaders > 0) {
            char **v = &r->values[r->nheaders - 1];
            char *joined = NULL;
            if (asprintf(&joined, "%s\n%s", *v, p) < 0)
                return -1;
            free(*v);
            *v = joined;
            r->headers[r->nheaders - 1].value = joined;
        } else {
            char *colon = strchr(p, ':');
            if (!colon || r->nheaders == MAX_HEADERS)
                return -1;
            *colon = '\0';
            r->values[r->nheaders] = strdup(colon + 1);
            r->headers[r->nheaders].name = p;
            r->headers[r->nheaders].value = r->values[r->nheaders];
            r->nheaders++;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static const char *raw_header(const raw_request_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* The signed-header list of a canonical request (its second-last line). */
static int creq_signs(const char *creq, const char *name)
{
    const char *last = strrchr(creq, '\n');
    if (!last)
        return 0;
    const char *s = last;
    while (s > creq && s[-1] != '\n')
        s--;
    size_t n = strlen(name);
    for (const char *p = s; p < last; p++)
        if ((p == s || p[-1] == ';') && strncmp(p, name, n) == 0 &&
            (p + n == last || p[n] == ';'))
            return 1;
    return 0;
}

/* -- one case --------------------------------------------------------------------------- */

static int compare(const char *stage, const char *name, const char *got, const char *want)
{
    if (got && want && strcmp(got, want) == 0)
        return 1;
    printf("  %s: %s differs\n  --- expected\n%s\n  --- got\n%s\n", name, stage,
           want ? want : "(missing)", got ? got : "(none)");
    return 0;
}

static int run_case(const char *dir, const char *name, const suite_constants_t *c)
{
    char *req_text = case_file(dir, name, "req");
    char *want_creq = case_file(dir, name, "creq");
    char *want_sts = case_file(dir, name, "sts");
    char *want_authz = case_file(dir, name, "authz");
    char *sreq_text = case_file(dir, name, "sreq");
    raw_request_t req, sreq;
    int ok = req_text && want_creq && want_sts && want_authz && raw_parse(req_text, &req) == 0;
    if (!ok) {
        printf("  %s: incomplete case folder\n", name);
        free(req_text);
    }
    memset(&sreq, 0, sizeof sreq);
    if (ok && sreq_text && raw_parse(sreq_text, &sreq) == 0)
        sreq_text = NULL; /* owned by sreq now */

    /* A case whose canonical request signs a session token the .req does not carry takes
     * the token from the signed request (.sreq), where the suite shows it. */
    sigv4_header_t hs[MAX_HEADERS + 1];
    size_t nh = 0;
    const char *token = NULL;
    if (ok) {
        memcpy(hs, req.headers, req.nheaders * sizeof hs[0]);
        nh = req.nheaders;
        token = raw_header(&req, "X-Amz-Security-Token");
        if (!token && creq_signs(want_creq, "x-amz-security-token")) {
            token = raw_header(&sreq, "X-Amz-Security-Token");
            if (token)
                hs[nh++] = (sigv4_header_t){ "X-Amz-Security-Token", token };
        }
    }

    sigv4_params_t p = { .region = c->region, .service = c->service, .unix_ms = c->unix_ms };
    sigv4_credentials_t cr = { c->access_key, c->secret, token };
    char *creq = NULL, *sts = NULL, *authz = NULL;
    if (ok) {
        sigv4_request_t r = { .method = req.method, .path = req.path, .query = req.query,
                              .headers = hs, .nheaders = nh, .body = req.body,
                              .body_len = req.body_len };
        ok = sigv4_canonical_request(&r, &p, &creq) == EVREC_OK &&
             compare("canonical request", name, creq, want_creq);
        ok = ok && sigv4_string_to_sign(creq, &p, &sts) == EVREC_OK &&
             compare("string to sign", name, sts, want_sts);
        ok = ok && sigv4_authorization(sts, creq, &p, &cr, NULL, &authz) == EVREC_OK &&
             compare("authorization", name, authz, want_authz);
    }

    /* The one-call path: sigv4_sign adds X-Amz-Date (and the token) itself. */
    if (ok) {
        sigv4_header_t plain[MAX_HEADERS];
        size_t np = 0;
        for (size_t i = 0; i < nh; i++)
            if (strcasecmp(hs[i].name, "X-Amz-Date") != 0 &&
                strcasecmp(hs[i].name, "X-Amz-Security-Token") != 0)
                plain[np++] = hs[i];
        sigv4_request_t r = { .method = req.method, .path = req.path, .query = req.query,
                              .headers = plain, .nheaders = np, .body = req.body,
                              .body_len = req.body_len };
        sigv4_signature_t sig;
        sigv4_key_cache_t cache;
        memset(&cache, 0, sizeof cache);
        /* A multi-line value (the suite's folded headers) signs in the stages above but is
         * not sent: sigv4_sign refuses it. */
        int multiline = 0;
        for (size_t i = 0; i < np; i++)
            multiline |= plain[i].value && strpbrk(plain[i].value, "\r\n") != NULL;
        if (multiline)
            ok = sigv4_sign(&cache, &r, &p, &cr, &sig) == EVREC_E_INVALID;
        else
            ok = sigv4_sign(&cache, &r, &p, &cr, &sig) == EVREC_OK &&
                 compare("sigv4_sign Authorization", name, sig.authorization, want_authz) &&
                 compare("X-Amz-Date", name, sig.amz_date, raw_header(&req, "X-Amz-Date"));
    }

    port_free(creq);
    port_free(sts);
    port_free(authz);
    free(want_creq);
    free(want_sts);
    free(want_authz);
    free(sreq_text);
    raw_free(&sreq);
    if (req_text)
        raw_free(&req);
    return ok;
}

/* -- walking the suite ------------------------------------------------------------------ */

typedef struct tally {
    int found, passed;
    const suite_constants_t *c;
} tally_t;

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A folder is a case if it holds any of the suite's case files; it must then be complete. */
static int holds_case_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int yes = 0;
    while (!yes && (e = readdir(d)) != NULL) {
        const char *dot = strrchr(e->d_name, '.');
        yes = dot && (!strcmp(dot, ".req") || !strcmp(dot, ".creq") || !strcmp(dot, ".sts") ||
                      !strcmp(dot, ".authz"));
    }
    closedir(d);
    return yes;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(const char *dir, tally_t *t)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256)
        if (e->d_name[0] != '.')
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n, sizeof names[0], name_cmp);
    for (size_t i = 0; i < n; i++) {
        char *sub = NULL;
        assert_true(asprintf(&sub, "%s/%s", dir, names[i]) > 0);
        if (is_dir(sub)) {
            if (holds_case_files(sub)) {
                t->found++;
                int ok = run_case(sub, names[i], t->c);
                t->passed += ok;
                printf("[ %-4s ] %s\n", ok ? "ok" : "FAIL", names[i]);
            }
            walk(sub, t);
        }
        free(sub);
        free(names[i]);
    }
}

static void aws_test_suite(void **state)
{
    (void)state;
    char *suite = suite_dir();
    assert_non_null(suite);
    if (!is_dir(suite))
        fail_msg("AWS SigV4 test suite not found at %s (run from the repository root)", suite);
    suite_constants_t c;
    load_constants(suite, &c);
    tally_t t = { 0, 0, &c };
    walk(suite, &t);
    printf("aws4_testsuite: %d/%d cases passed\n", t.passed, t.found);
    /* Every top-level folder must have contributed: a case folder that was not recognised
     * (so silently skipped) would otherwise go unnoticed. */
    DIR *d = opendir(suite);
    struct dirent *e;
    int top = 0;
    while ((e = readdir(d)) != NULL) {
        char *sub = NULL;
        if (e->d_name[0] == '.' || asprintf(&sub, "%s/%s", suite, e->d_name) < 0)
            continue;
        if (is_dir(sub)) {
            top++;
            tally_t one = { 0, 0, &c };
            if (!holds_case_files(sub)) {
                /* a grouping folder: must hold at least one case below it */
                DIR *g = opendir(sub);
                struct dirent *ge;
                while ((ge = readdir(g)) != NULL) {
                    char *gs = NULL;
                    if (ge->d_name[0] != '.' && asprintf(&gs, "%s/%s", sub, ge->d_name) > 0) {
                        one.found += is_dir(gs) && holds_case_files(gs);
                        free(gs);
                    }
                }
                closedir(g);
                if (one.found == 0)
                    fail_msg("folder %s holds no test case", e->d_name);
            }
        }
        free(sub);
    }
    closedir(d);
    free(suite);
    assert_true(top > 0);
    assert_true(t.found >= top);
    assert_int_equal(t.passed, t.found);
}

/* -- our own properties ----------------------------------------------------------------- */

static const sigv4_header_t host_only[] = { { "Host", "example.amazonaws.com" } };

static void sign_with(sigv4_key_cache_t *cache, const char *secret, const char *region,
                      int64_t ms, sigv4_signature_t *out)
{
    sigv4_request_t r = { .method = "POST", .path = "/v1/apps/abc/events",
                          .headers = host_only, .nheaders = 1, .body = "{}", .body_len = 2 };
    sigv4_params_t p = { .region = region, .service = "mobiletargeting", .unix_ms = ms };
    sigv4_credentials_t c = { "AKIDEXAMPLE", secret, NULL };
    assert_int_equal(sigv4_sign(cache, &r, &p, &c, out), EVREC_OK);
}

static void key_cache(void **state)
{
    (void)state;
    const int64_t t0 = 1764000000000LL, day = 86400000LL;
    sigv4_key_cache_t cache;
    memset(&cache, 0, sizeof cache);
    sigv4_signature_t fresh, cached;

    sign_with(&cache, "secret-1", "us-east-1", t0, &cached);
    sign_with(NULL, "secret-1", "us-east-1", t0, &fresh);
    assert_string_equal(cached.signature, fresh.signature);
    assert_string_equal(cache.scope, "20251124/us-east-1/mobiletargeting");

    /* Same scope and secret: the cached key is used as it is. Tampering with it proves the
     * second signature came from the cache, not from a new derivation. */
    cache.key[0] ^= 0xff;
    sign_with(&cache, "secret-1", "us-east-1", t0 + 1000, &cached);
    sign_with(NULL, "secret-1", "us-east-1", t0 + 1000, &fresh);
    assert_string_not_equal(cached.signature, fresh.signature);
    assert_string_equal(cache.scope, "20251124/us-east-1/mobiletargeting");

    /* A new date, region or secret derives again (the tampered key is not used). */
    sign_with(&cache, "secret-1", "us-east-1", t0 + day, &cached);
    sign_with(NULL, "secret-1", "us-east-1", t0 + day, &fresh);
    assert_string_equal(cached.signature, fresh.signature);
    assert_string_equal(cache.scope, "20251125/us-east-1/mobiletargeting");

    cache.key[0] ^= 0xff;
    sign_with(&cache, "secret-1", "eu-west-1", t0 + day, &cached);
    sign_with(NULL, "secret-1", "eu-west-1", t0 + day, &fresh);
    assert_string_equal(cached.signature, fresh.signature);
    assert_string_equal(cache.scope, "20251125/eu-west-1/mobiletargeting");

    cache.key[0] ^= 0xff;
    sign_with(&cache, "secret-2", "eu-west-1", t0 + day, &cached);
    sign_with(NULL, "secret-2", "eu-west-1", t0 + day, &fresh);
    assert_string_equal(cached.signature, fresh.signature);
    /* The cache holds a digest of the secret, never the secret. */
    assert_null(memmem(&cache, sizeof cache, "secret-2", 8));
}

static void sign_adds_headers(void **state)
{
    (void)state;
    sigv4_request_t r = { .method = "POST", .path = "/events", .headers = host_only,
                          .nheaders = 1, .body = "abc", .body_len = 3 };
    sigv4_params_t p = { .region = "us-west-2", .service = "personalize",
                         .unix_ms = 1764000000123LL, .sign_content_sha256 = 1 };
    sigv4_credentials_t c = { "AKID", "secret", "token/with+chars=" };
    sigv4_signature_t s;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_OK);
    assert_string_equal(s.amz_date, "20251124T160000Z");
    char h[65];
    sigv4_sha256_hex("abc", 3, h);
    assert_string_equal(s.content_sha256, h);
    assert_non_null(strstr(s.authorization,
                           "SignedHeaders=host;x-amz-content-sha256;x-amz-date;"
                           "x-amz-security-token, Signature="));
    assert_non_null(strstr(s.authorization, "Credential=AKID/20251124/us-west-2/personalize/"));
    assert_int_equal(strlen(s.signature), 64);
    assert_non_null(strstr(s.authorization, s.signature));
    assert_null(strstr(s.authorization, "secret"));

    /* A precomputed payload hash is used instead of hashing the body. */
    r.body = NULL;
    r.body_len = 0;
    r.payload_hash = h;
    sigv4_signature_t s2;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s2), EVREC_OK);
    assert_string_equal(s2.authorization, s.authorization);
}

static void paths_and_queries(void **state)
{
    (void)state;
    sigv4_params_t p = { .region = "us-east-1", .service = "service", .unix_ms = 0 };
    sigv4_request_t r = { .method = "GET", .path = "/a%20b/./c//../d", .query = "b=2&a=%7e&a",
                          .headers = host_only, .nheaders = 1 };
    char *creq = NULL;
    assert_int_equal(sigv4_canonical_request(&r, &p, &creq), EVREC_OK);
    /* normalised, then encoded again: the '%' of an encoded path becomes %25 */
    assert_memory_equal(creq, "GET\n/a%2520b/d\na=&a=~&b=2\n", 26);
    port_free(creq);
    p.no_path_normalize = 1;
    assert_int_equal(sigv4_canonical_request(&r, &p, &creq), EVREC_OK);
    assert_memory_equal(creq, "GET\n/a%20b/./c//../d\n", 21);
    port_free(creq);
}

static void rejects_bad_input(void **state)
{
    (void)state;
    sigv4_signature_t s;
    sigv4_params_t p = { .region = "us-east-1", .service = "svc", .unix_ms = 1 };
    sigv4_credentials_t c = { "AKID", "secret", NULL };
    sigv4_header_t no_host[] = { { "Content-Type", "x" } };
    sigv4_header_t bad_name[] = { { "Host", "h" }, { "Bad Name", "x" } };
    sigv4_request_t r = { .method = "POST", .path = "/", .headers = no_host, .nheaders = 1 };
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_E_INVALID);
    r.headers = bad_name;
    r.nheaders = 2;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_E_INVALID);
    r.nheaders = 1;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_OK);
    sigv4_params_t bad = p;
    bad.region = "us/east";
    assert_int_equal(sigv4_sign(NULL, &r, &bad, &c, &s), EVREC_E_INVALID);
    bad = p;
    bad.unix_ms = -1;
    assert_int_equal(sigv4_sign(NULL, &r, &bad, &c, &s), EVREC_E_INVALID);
    sigv4_credentials_t nos = { "AKID", "", NULL };
    assert_int_equal(sigv4_sign(NULL, &r, &p, &nos, &s), EVREC_E_INVALID);
    r.body_len = 5; /* length without a body */
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_E_INVALID);
    assert_int_equal(sigv4_sign(NULL, NULL, &p, &c, &s), EVREC_E_INVALID);
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, NULL), EVREC_E_INVALID);
    /* A value that would not go out as one header line: a session token with CR/LF (it would
     * inject a header), a control character in a caller's header. */
    r.body_len = 0;
    sigv4_credentials_t crlf = { "AKID", "secret", "tok\r\nX-Injected: yes" };
    assert_int_equal(sigv4_sign(NULL, &r, &p, &crlf, &s), EVREC_E_INVALID);
    sigv4_credentials_t lf = { "AKID", "secret", "tok\nmore" };
    assert_int_equal(sigv4_sign(NULL, &r, &p, &lf, &s), EVREC_E_INVALID);
    sigv4_header_t ctl[] = { { "Host", "h" }, { "X-Note", "a\x01b" } };
    r.headers = ctl;
    r.nheaders = 2;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_E_INVALID);
    sigv4_header_t tab[] = { { "Host", "h" }, { "X-Note", "a\tb" } };
    r.headers = tab;
    assert_int_equal(sigv4_sign(NULL, &r, &p, &c, &s), EVREC_OK);
    sigv4_credentials_t token = { "AKID", "secret", "a-good/token+=" };
    assert_int_equal(sigv4_sign(NULL, &r, &p, &token, &s), EVREC_OK);
}

/* Every built SHA-256 backend gives mbedTLS's digest, for lengths around the block edges and
 * a request-sized body. */
static void sha256_backends_agree(void **state)
{
    (void)state;
    size_t big = 300000;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 7));
    const size_t lens[] = { 0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 34567, 300000 };
    const char *was = port_sha256_backend();
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        uint8_t ref[32], got[32];
        mbedtls_sha256_ret(buf, lens[k], ref, 0);
        assert_int_equal(port_sha256_use("mbedtls"), 0);
        port_sha256(buf, lens[k], got);
        assert_memory_equal(got, ref, 32);
        if (port_sha256_use("libcrypto") == 0) {
            port_sha256(buf, lens[k], got);
            assert_memory_equal(got, ref, 32);
        }
    }
    /* HMAC-SHA256 too: RFC 4231's case 2, then keys and messages around the block size
     * (a key longer than a block is hashed first) against mbedTLS's. */
    static const uint8_t rfc4231_2[32] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
        0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    };
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    for (int b = 0; b < 2; b++) {
        if (port_sha256_use(b ? "libcrypto" : "mbedtls") != 0)
            continue;
        uint8_t got[32], ref[32];
        assert_int_equal(port_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, got), 0);
        assert_memory_equal(got, rfc4231_2, 32);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t keylen = lens[k] % 200 + 1;
            assert_int_equal(port_hmac_sha256(buf + 7, keylen, buf, lens[k], got), 0);
            assert_int_equal(mbedtls_md_hmac(md, buf + 7, keylen, buf, lens[k], ref), 0);
            assert_memory_equal(got, ref, 32);
        }
    }
    assert_int_equal(port_sha256_use(was), 0);
    assert_int_equal(port_sha256_use("no-such-backend"), -ENOENT);
    free(buf);
}

/* The whole suite runs once per SHA-256 backend the build has: mbedTLS (the reference, always)
 * and libcrypto (when built with it). */
static int use_backend(void **state)
{
    return port_sha256_use((const char *)*state) == 0 ? 0 : -1;
}

int main(void)
{
    static const char *const backends[] = { "mbedtls", "libcrypto" };
    int failed = 0;
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        if (port_sha256_use(backends[b]) != 0) {
            printf("sigv4 with SHA-256 from %s: not built in (make SHA256=libcrypto)\n",
                   backends[b]);
            continue;
        }
        void *name = (void *)backends[b];
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate_setup_teardown(aws_test_suite, use_backend, NULL, name),
            cmocka_unit_test_prestate_setup_teardown(key_cache, use_backend, NULL, name),
            cmocka_unit_test_prestate_setup_teardown(sign_adds_headers, use_backend, NULL, name),
            cmocka_unit_test_prestate_setup_teardown(paths_and_queries, use_backend, NULL, name),
            cmocka_unit_test_prestate_setup_teardown(rejects_bad_input, use_backend, NULL, name),
            cmocka_unit_test(sha256_backends_agree),
        };
        char group[64];
        snprintf(group, sizeof group, "sigv4 (SHA-256: %s)", backends[b]);
        failed += cmocka_run_group_tests_name(group, tests, NULL, NULL);
    }
    return failed;
}
