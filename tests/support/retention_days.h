/*
 * retention_days.h — what the retention tests of both store backends
 * (tests/lib/store/test_retention.c, tests/pg/test_pg_retention.c) write
 * and read: sixty days of traffic ending now, and the `status` figures of
 * a window read from the rollups, to be compared before and after.
 */
#ifndef MCPR_RETENTION_DAYS_H
#define MCPR_RETENTION_DAYS_H

#include <stdint.h>

#include "mcpr/mcpr.h"

#define RD_HOUR 3600000LL
#define RD_DAY (24 * RD_HOUR)
#define RD_DAYS 60
#define RD_PER_SESSION 40

/* Through a store opened on target with o: one session a day, started at
 * now − (k + 0.5) days (proxy "a" or "b" by turn), RD_PER_SESSION
 * requests in its first 30 minutes (tools search, fetch and none; every
 * 7th failed), closed an hour after its start — except the last two
 * days' (open). Far (≥ 11 h) from every hour-aligned cutoff the tests use. */
void rd_write_days(const char *target, int64_t now, const mcpr_store_options *o);

typedef struct rd_totals {
  int64_t calls, errors, search_calls, search_errors, bytes_in;
} rd_totals;

/* mcpr_query_stats since since on target, after raw_max(q, 0): the
 * backend's hook that makes it read its rollups however small the store. */
rd_totals rd_stats_since(const char *target, int64_t since,
                         void (*raw_max)(mcpr_query *q, int64_t rows));
void rd_assert_totals_equal(rd_totals a, rd_totals b);

/* mcpr_query_store_info of target. */
mcpr_store_info rd_info(const char *target);

#endif
