/*
 * The shared config and credentials files (~/.aws/config, ~/.aws/credentials, or the files
 * AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name): reading them (bounded, a secret only
 * from a private file), a key of a profile in them, the profile in use, the region.
 */
#include "credentials.h"
#include "creds_chain.h"

#include <stdio.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#include "port.h"

#define MAX_SHARED_FILE (1024 * 1024)

static int set(const char *s)
{
    return s && *s;
}

/* The option, else AWS_DEFAULT_PROFILE, else AWS_PROFILE (botocore reads them in that
 * order), else "default". */
const char *creds_profile_name(const char *configured)
{
    if (set(configured))
        return configured;
    const char *env = port_getenv("AWS_DEFAULT_PROFILE");
    if (!set(env))
        env = port_getenv("AWS_PROFILE");
    return set(env) ? env : "default";
}

/* The path of a shared file: the environment override, else ~/.aws/<name>. */
static int shared_path(const char *env_name, const char *file, char *out, size_t len)
{
    const char *env = port_getenv(env_name);
    if (set(env)) {
        snprintf(out, len, "%s", env);
        return 0;
    }
    const char *home = port_home_dir();
    if (!set(home))
        return -1;
    int n = snprintf(out, len, "%s/.aws/%s", home, file);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int creds_shared_load(creds_shared_file_t *f, const char *env, const char *name, int is_config)
{
    memset(f, 0, sizeof *f);
    f->is_config = is_config;
    if (shared_path(env, name, f->path, sizeof f->path) != 0)
        return 0;
    /* AWS_CONFIG_FILE=/dev/null says "no such file" (botocore reads it as empty); any other
     * file that is not regular (a FIFO would block) is refused below */
    if (strcmp(f->path, "/dev/null") == 0)
        return 0;
    size_t len;
    int rc = port_read_file_owned(f->path, &f->text, &len, MAX_SHARED_FILE, &f->owner, &f->mode);
    if (rc == -ENOENT || rc == -ENOTDIR) {
        f->text = NULL;
        return 0;
    }
    return rc;
}

void creds_shared_free(creds_shared_file_t *f)
{
    if (f->text) {
        mbedtls_platform_zeroize(f->text, strlen(f->text));
        port_free(f->text);
    }
    f->text = NULL;
}

/* A secret is taken only from a private file, as ssh asks of its keys (port_secret_owner_ok):
 * anyone else who may read it has the secret, anyone who may write it chooses the identity.
 * 0 if `f` may hold one; else a note and -1. */
int creds_secret_file_ok(const creds_shared_file_t *f, const char *key, creds_attempt_t *a)
{
    int rc = port_secret_owner_ok(f->owner, f->mode);
    if (rc == -EPERM)
        creds_note(a, P_FILES, "%s holds %s but belongs to another user (uid %ld); refused",
                   f->path, key, f->owner);
    else if (rc != 0)
        creds_note(a, P_FILES, "%s holds %s but group or others may access it (mode %04o); "
                   "refused: chmod 600 %s", f->path, key, f->mode, f->path);
    return rc ? -1 : 0;
}

/* Look a key up in the profile: credentials file first, then config (as the CLI does); *from
 * (when not NULL) gets the file it was found in. */
int creds_shared_get_from(creds_shared_file_t *files, size_t nfiles, const char *profile,
                          const char *key, char *out, size_t outlen, creds_attempt_t *a,
                          int *malformed, const creds_shared_file_t **from)
{
    for (size_t i = 0; i < nfiles; i++) {
        if (!files[i].text)
            continue;
        int bad;
        int rc = creds_ini_lookup(files[i].text, files[i].is_config, profile, key, out, outlen,
                                  &bad);
        if (rc == EVREC_E_CONFIG) {
            creds_note(a, P_FILES, "%s line %d is malformed", files[i].path, bad);
            *malformed = 1;
            return rc;
        }
        if (rc == EVREC_OK && out[0]) {
            if (from)
                *from = &files[i];
            return EVREC_OK;
        }
    }
    out[0] = '\0';
    return EVREC_E_NOT_FOUND;
}

int creds_shared_get(creds_shared_file_t *files, size_t nfiles, const char *profile,
                     const char *key, char *out, size_t outlen, creds_attempt_t *a,
                     int *malformed)
{
    return creds_shared_get_from(files, nfiles, profile, key, out, outlen, a, malformed, NULL);
}

/* The config file's text for creds_endpoint.c (NULL when there is none); free with
 * port_free. Read as the credential providers read it. */
char *creds_config_text(void)
{
    creds_shared_file_t f;
    if (creds_shared_load(&f, "AWS_CONFIG_FILE", "config", 1) != 0) {
        creds_shared_free(&f);
        return NULL;
    }
    return f.text;
}

/* -- region ---------------------------------------------------------------------------- */

int creds_resolve_region(const char *explicit_region, const char *profile, char *out,
                         size_t outlen)
{
    if (!out || outlen == 0)
        return EVREC_E_INVALID;
    out[0] = '\0';
    const char *r = set(explicit_region) ? explicit_region : port_getenv("AWS_REGION");
    if (!set(r))
        r = port_getenv("AWS_DEFAULT_REGION");
    if (set(r)) {
        if (strlen(r) >= outlen)
            return EVREC_E_CONFIG;
        snprintf(out, outlen, "%s", r);
        return EVREC_OK;
    }
    creds_shared_file_t f;
    int rc = EVREC_E_CONFIG;
    if (creds_shared_load(&f, "AWS_CONFIG_FILE", "config", 1) == 0 && f.text)
        rc = creds_ini_get(f.text, 1, creds_profile_name(profile), "region", out, outlen);
    creds_shared_free(&f);
    if (rc == EVREC_OK && out[0])
        return EVREC_OK;
    /* Last, the instance's own region (IMDSv2), as the SDKs do on EC2. */
    creds_config_t imds = { .connect_timeout_ms = 1000, .request_timeout_ms = 1000 };
    out[0] = '\0';
    return creds_imds_region(&imds, out, outlen) == EVREC_OK && out[0] ? EVREC_OK
                                                                         : EVREC_E_CONFIG;
}
