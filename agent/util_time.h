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

/** Read exactly n decimal digits at *p into *out and advance *p; -1 (nothing moved) if one of
 *  them is not a digit. The atom of both ISO 8601 grammars (the services' strict one in
 *  event_util.c, botocore's lenient one in the CLI's validate.c). */
int util_digits(const char **p, int n, int *out);

/** 1 if month, day, hour, minute and second make a real date and time of year y (seconds
 *  0..59: no leap second), else 0. */
int util_valid_civil(int64_t y, int mo, int d, int h, int mi, int s);

#endif /* EVREC_UTIL_TIME_H */
