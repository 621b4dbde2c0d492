/*
 * json_scan_oracle.h — checks core/json_scan against jansson on one input:
 * the scanner's OK must be jansson's yes, its BAD jansson's no, and what it
 * reads (a member's span, a plain string's bytes, a plain integer's text,
 * an id's compact text) must be what jansson reads. Returns NULL when they
 * agree, else what differs. Used by tests/lib/core/test_json_scan.c and by
 * tests/fuzz/fuzz_json_scan.c (which compiles json_scan_oracle.c in).
 */
#ifndef MCPR_TEST_JSON_SCAN_ORACLE_H
#define MCPR_TEST_JSON_SCAN_ORACLE_H

#include <stddef.h>

const char *json_scan_disagreement(const char *text, size_t len);

#endif
