/*
 * json_text.h — internal: JSON values as compact text, with every real
 * written in the fewest digits that read back as the same double
 * (16.67, not jansson's 17-digit 16.670000000000002).
 *
 * jansson writes reals with one precision for a whole document (17 digits
 * by default, JSON_REAL_PRECISION otherwise), so a value that needs 15
 * digits and one that needs 17 cannot both come out right. This writer
 * tries 15, 16 and 17 digits per value and keeps the first that parses
 * back to the same double. Everything else is written as jansson's
 * JSON_COMPACT writes it (same string escapes, same key order, ".0" on a
 * real that looks like an integer), so text that holds no real is byte for
 * byte json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY).
 */
#ifndef MCPR__CORE_JSON_TEXT_H
#define MCPR__CORE_JSON_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* Shortest text of a real that reads back as v, as jansson formats a real
 * ("1.0", "1e+300" → "1e300", "16.67"). Returns the length; buf must hold
 * at least MCPR__JSON_REAL_MAX bytes. */
#define MCPR__JSON_REAL_MAX 32
size_t mcpr__json_real_text(double v, char *buf);

/* Compact JSON text of any value (a new string: free()), or NULL when out
 * of memory. */
char *mcpr__json_dumps(const json_t *v);

#endif
