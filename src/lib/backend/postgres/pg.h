/*
 * pg.h — internal to the PostgreSQL backend: connecting, the schema and
 * its migrations, and turning libpq's errors into statuses and messages.
 * Shared by the write side (writer.c) and the read side (query.c), and the
 * one place that knows the PostgreSQL schema.
 */
#ifndef MCPR__PG_H
#define MCPR__PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "mcpr/error.h"
#include "mcpr/store.h"

/* Messages name the store by its redacted URL (mcpr_store_target_redact). */
#define MCPR__PG_SHOWN_MAX 1024

/* How long a connection attempt may take when neither the URL
 * (connect_timeout=) nor PGCONNECT_TIMEOUT says: libpq's own default is
 * to wait without limit. */
#define MCPR__PG_CONNECT_TIMEOUT_S "10"

/*
 * Follow order (query.c's follow, writer.c's batches). Request ids come
 * from the table's identity sequence as each INSERT runs, but batches of
 * several writers commit in any order: a follower that passed id N could
 * later see a row below N committed late. So each batch's transaction
 * first takes a shared transaction-level advisory lock keyed (two int4
 * keys) by the store's requests table (its OID: stores in other schemas
 * of the database do not hold each other's followers back) and by the
 * sequence's last value at that moment divided by 65536 (a floor under
 * every id the batch draws, rounded down to fit); it goes with the
 * commit. A follower reads the sequence's last value Q, then (in a later
 * statement) the lowest floor F held on its table, then the rows: every id
 * up to min(Q, F) is settled — drawn before Q was read, so by a batch that
 * held its lock then: committed and seen, or never to be — and the
 * follower goes no further than that.
 */
#define MCPR__PG_FOLLOW_SEQ_LAST                                                             \
  "coalesce(pg_sequence_last_value(pg_get_serial_sequence('requests', 'id')::regclass), 0)"
/* The table's OID as the int4 an advisory key takes (pg_locks shows it
 * back as the unsigned classid). */
#define MCPR__PG_FOLLOW_TABLE_KEY                                                            \
  "(('requests'::regclass::oid::int8 + 2147483648) % 4294967296 - 2147483648)::int4"
#define MCPR__PG_FOLLOW_LOCK                                                                 \
  "SELECT pg_advisory_xact_lock_shared(" MCPR__PG_FOLLOW_TABLE_KEY ", (" MCPR__PG_FOLLOW_SEQ_LAST \
  " >> 16)::int4)"
#define MCPR__PG_FOLLOW_FLOOR                                                                \
  "SELECT min(objid::int8 << 16) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"  \
  " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"         \
  " AND classid = 'requests'::regclass::oid"

typedef struct mcpr__pg_target {
  char *url;                      /* the URL as given: secret */
  char shown[MCPR__PG_SHOWN_MAX]; /* what messages show */
  char *password;                 /* scrubbed from every message; NULL: none in the URL */
} mcpr__pg_target;

mcpr_status mcpr__pg_target_init(mcpr__pg_target *t, const char *url, mcpr_error *err);
void mcpr__pg_target_release(mcpr__pg_target *t);

/*
 * Connect to t (every libpq URL parameter, PGPASSWORD and .pgpass
 * honoured), within the connect timeout. MCPR_ENETWORK (unreachable, the
 * server down), MCPR_EAUTH (refused credentials), MCPR_ENOTFOUND (no such
 * database), with a message naming t->shown and never the password.
 */
mcpr_status mcpr__pg_connect(const mcpr__pg_target *t, PGconn **out, mcpr_error *err);

/*
 * Bring the database's mcpr tables to MCPR_STORE_SCHEMA_VERSION. create:
 * create them when missing (a writer), under a transaction-level advisory
 * lock, so any number of processes may race here; else (a read) a
 * database without them is MCPR_ENOTFOUND. A newer version is
 * MCPR_ENEWER, a meta table that is not ours MCPR_ENOTSTORE. *version
 * (may be NULL) receives the version found.
 */
mcpr_status mcpr__pg_migrate(PGconn *c, const mcpr__pg_target *t, bool create, int *version,
                             mcpr_error *err);

/* The status for a failed result (NULL: no result at all) on c. */
mcpr_status mcpr__pg_status(PGconn *c, const PGresult *r);
/* Whether r failed on one row's data (a constraint, a bad value), not on
 * the connection or the transaction. */
bool mcpr__pg_is_row_error(const PGresult *r);
/* Fill err from r (or c's last error), "doing: detail", password scrubbed.
 * Returns the status. */
mcpr_status mcpr__pg_error(PGconn *c, const PGresult *r, const mcpr__pg_target *t,
                           mcpr_error *err, const char *doing);
/* Run fixed SQL without parameters or rows; true when it succeeded. */
bool mcpr__pg_exec(PGconn *c, const char *sql);

#endif
