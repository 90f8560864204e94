/*
 * Calendar maths, once: proleptic Gregorian dates <-> days since 1970-01-01 (H. Hinnant's
 * civil algorithms), for the event timestamps, SigV4's dates and the CLI's parameters. Pure.
 */
#ifndef EVREC_UTIL_TIME_H
#define EVREC_UTIL_TIME_H

#include <stdint.h>

/** Days since 1970-01-01 of year y, month m (1..12), day d (1..31); any year. */
int64_t util_days_from_civil(int64_t y, unsigned m, unsigned d);

/** The date of a day count since 1970-01-01; any count. */
void util_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/** Days in month m (1..12) of year y, February 29 in leap years. */
unsigned util_days_in_month(int64_t y, unsigned m);

#endif /* EVREC_UTIL_TIME_H */
