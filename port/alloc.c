/*
 * The allocator every part of evrec uses. Shared by all ports: it is plain C.
 * This is the one piece of process-wide mutable state in evrec (set once, before any agent
 * exists, by evrec_set_allocator()).
 */
#include "port.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "evrec.h"

static evrec_malloc_fn g_malloc = malloc;
static evrec_realloc_fn g_realloc = realloc;
static evrec_free_fn g_free = free;

EVREC_API int evrec_set_allocator(evrec_malloc_fn m, evrec_realloc_fn r, evrec_free_fn f)
{
    if (m == NULL && r == NULL && f == NULL) {
        m = malloc;
        r = realloc;
        f = free;
    } else if (m == NULL || r == NULL || f == NULL) {
        return EVREC_E_INVALID;
    }
    g_malloc = m;
    g_realloc = r;
    g_free = f;
    cJSON_Hooks hooks = { .malloc_fn = m, .free_fn = f };
    cJSON_InitHooks(&hooks);
    return EVREC_OK;
}

void *port_malloc(size_t size)
{
    return g_malloc(size ? size : 1);
}

void *port_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    void *p = g_malloc(total != 0 ? total : 1);
    if (p)
        memset(p, 0, total);
    return p;
}

void *port_realloc(void *ptr, size_t size)
{
    return g_realloc(ptr, size ? size : 1);
}

void port_free(void *ptr)
{
    if (ptr)
        g_free(ptr);
}

char *port_strndup(const char *s, size_t len)
{
    if (s == NULL)
        return NULL;
    char *d = g_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

char *port_strdup(const char *s)
{
    return s ? port_strndup(s, strlen(s)) : NULL;
}

EVREC_API void evrec_free(void *ptr)
{
    port_free(ptr);
}
