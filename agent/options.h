/*
 * evrec_options_t as agent/options.def describes it: the defaults (evrec_options_init), the one
 * owned copy an agent keeps of the caller's options, and the ranges evrec_open() checks.
 *
 * The agent's copy is the only copy of the option strings: the flusher's configuration and the
 * credential chain borrow them (they are stopped and freed before the copy is), and
 * options_free() wipes them, some being secrets.
 */
#ifndef EVREC_OPTIONS_H
#define EVREC_OPTIONS_H

#include <stddef.h>

#include "evrec.h"

/** *dst = the defaults overlaid with `src` as far as its struct_size reaches, every string
 *  option duplicated (src NULL: the defaults). EVREC_E_CONFIG (struct_size too small) or
 *  EVREC_E_NOMEM with a message in err; on failure nothing is left to free. */
int options_copy(evrec_options_t *dst, const evrec_options_t *src, char *err, size_t errlen);

/** Wipe and free the string options of a copy made by options_copy(), and set them to NULL. */
void options_free(evrec_options_t *o);

/** Check every option's range from options.def: the ALWAYS and ONE_OF ones, and with
 *  `delivering` (the agent uploads: no no_flusher) the DELIVERING ones too. EVREC_E_CONFIG
 *  with "options.<name> ..." in err for the first option out of range, else EVREC_OK. */
int options_check_ranges(const evrec_options_t *o, int delivering, char *err, size_t errlen);

#endif /* EVREC_OPTIONS_H */
