/*
 * duration.c — human durations, latency thresholds and counts from the
 * command line (SPEC §7).
 *
 * One grammar for all three: optional spaces, decimal digits, optional
 * spaces, a unit, optional spaces. Digits are accumulated by hand with an
 * overflow check before every step, so "99999999999999999999d" is an error
 * rather than a wrapped value; the unit multiplication is checked the same
 * way. Whatever is accepted is strictly positive.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "mcpr/util.h"

typedef struct unit {
  const char *name;
  int64_t factor;
} unit;

/* Factors in the caller's base unit. Longest names first where one is a
 * prefix of another ("ms" before "m"). */
static const unit DURATION_UNITS_MS[] = {
    {"s", 1000},     {"m", 60000},      {"h", 3600000},
    {"d", 86400000}, {"w", 604800000},  {NULL, 0},
};

static const unit THRESHOLD_UNITS_US[] = {
    {"us", 1},
    {"\xc2\xb5s", 1}, /* U+00B5 MICRO SIGN */
    {"\xce\xbcs", 1}, /* U+03BC GREEK SMALL LETTER MU */
    {"ms", 1000},
    {"s", 1000000},
    {"m", 60000000},
    {"h", 3600000000LL},
    {"d", 86400000000LL},
    {"w", 604800000000LL},
    {NULL, 0},
};

#define DURATION_FORMS "an integer and one of s, m, h, d, w (e.g. 30m, 1h, 7d)"
#define THRESHOLD_FORMS                                                        \
  "an integer and one of us, \xc2\xb5s, ms, s, m, h, d, w (e.g. 250us, 500ms, 2s)"

static const char *skip_spaces(const char *p) {
  while (*p && isspace((unsigned char)*p))
    p++;
  return p;
}

static mcpr_status parse_with_units(const char *flag, const char *text, const unit *units,
                                    const char *forms, int64_t *out, mcpr_error *err) {
  const char *what = flag ? flag : "value";
  if (!text)
    return mcpr_error_set(err, MCPR_EINVAL, "%s needs a value: %s", what, forms);
  const char *p = skip_spaces(text);
  if (*p == '-')
    return mcpr_error_set(err, MCPR_EINVAL, "%s must be positive, got '%.64s': %s", what,
                          text, forms);
  if (*p == '+')
    p++;
  if (!isdigit((unsigned char)*p))
    return mcpr_error_set(err, MCPR_EINVAL, "invalid %s '%.64s': expected %s", what, text,
                          forms);
  int64_t n = 0;
  for (; isdigit((unsigned char)*p); p++) {
    int d = *p - '0';
    if (n > (INT64_MAX - d) / 10)
      return mcpr_error_set(err, MCPR_ERANGE, "%s '%.64s' is too large", what, text);
    n = n * 10 + d;
  }
  p = skip_spaces(p);
  const unit *u = NULL;
  for (const unit *c = units; c->name; c++) {
    size_t len = strlen(c->name);
    if (strncmp(p, c->name, len) == 0 && *skip_spaces(p + len) == '\0') {
      u = c;
      break;
    }
  }
  if (!u)
    return mcpr_error_set(err, MCPR_EINVAL, "invalid %s '%.64s': expected %s", what, text,
                          forms);
  if (n == 0)
    return mcpr_error_set(err, MCPR_EINVAL, "%s must be greater than zero, got '%.64s'",
                          what, text);
  if (n > INT64_MAX / u->factor)
    return mcpr_error_set(err, MCPR_ERANGE, "%s '%.64s' is too large", what, text);
  *out = n * u->factor;
  return MCPR_OK;
}

mcpr_status mcpr_parse_duration_ms(const char *flag, const char *text, int64_t *out_ms,
                                   mcpr_error *err) {
  return parse_with_units(flag, text, DURATION_UNITS_MS, DURATION_FORMS, out_ms, err);
}

mcpr_status mcpr_parse_threshold_us(const char *flag, const char *text, int64_t *out_us,
                                    mcpr_error *err) {
  return parse_with_units(flag, text, THRESHOLD_UNITS_US, THRESHOLD_FORMS, out_us, err);
}

mcpr_status mcpr_parse_count(const char *flag, const char *text, int64_t *out,
                             mcpr_error *err) {
  const char *what = flag ? flag : "count";
  if (!text)
    return mcpr_error_set(err, MCPR_EINVAL, "%s needs a positive integer", what);
  const char *p = skip_spaces(text);
  if (*p == '+')
    p++;
  if (!isdigit((unsigned char)*p))
    return mcpr_error_set(err, MCPR_EINVAL, "%s needs a positive integer, got '%.64s'", what,
                          text);
  int64_t n = 0;
  for (; isdigit((unsigned char)*p); p++) {
    n = n * 10 + (*p - '0');
    if (n > MCPR_COUNT_MAX)
      return mcpr_error_set(err, MCPR_ERANGE, "%s '%.64s' is too large (at most %d)", what,
                            text, MCPR_COUNT_MAX);
  }
  if (*skip_spaces(p) != '\0')
    return mcpr_error_set(err, MCPR_EINVAL, "%s needs a positive integer, got '%.64s'", what,
                          text);
  if (n == 0)
    return mcpr_error_set(err, MCPR_EINVAL, "%s must be greater than zero, got '%.64s'", what,
                          text);
  *out = n;
  return MCPR_OK;
}
