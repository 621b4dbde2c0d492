/*
 * lazy_pq.c — the libpq functions the PostgreSQL backend calls, loaded on
 * first use (core/dynlib.h): a command on a SQLite store never loads
 * libpq. The prototypes are libpq-fe.h's own, so the compiler checks each
 * stub against it. A function the backend starts to call must be added
 * here (the link fails until it is).
 */
#include <libpq-fe.h>
#include <stddef.h>

#include "core/dynlib.h"

static mcpr__dynlib libpq = {"libpq.so.5", NULL, 0};

#define PQ(ret, name, params, args, fallback) \
  MCPR__DYNLIB_STUB(libpq, ret, name, params, args, fallback)
#define PQ_VOID(name, params, args) MCPR__DYNLIB_VOID_STUB(libpq, name, params, args)

typedef const char *const *pq_strings;

PQ(PGconn *, PQconnectdbParams, (pq_strings keywords, pq_strings values, int expand_dbname),
   (keywords, values, expand_dbname), NULL)
PQ(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg),
   (conninfo, errmsg), (errmsg ? (*errmsg = NULL) : NULL, (PQconninfoOption *)NULL))
PQ_VOID(PQconninfoFree, (PQconninfoOption *options), (options))
PQ(ConnStatusType, PQstatus, (const PGconn *conn), (conn), CONNECTION_BAD)
PQ(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn), PQTRANS_UNKNOWN)
PQ(char *, PQerrorMessage, (const PGconn *conn), (conn), (char *)"libpq.so.5 could not be loaded")
PQ_VOID(PQfinish, (PGconn *conn), (conn))
PQ(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn *conn, PQnoticeProcessor proc, void *arg),
   (conn, proc, arg), NULL)
PQ(PGresult *, PQexec, (PGconn *conn, const char *query), (conn, query), NULL)
PQ(PGresult *, PQexecParams,
   (PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
    pq_strings paramValues, const int *paramLengths, const int *paramFormats, int resultFormat),
   (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat),
   NULL)
PQ(PGresult *, PQprepare,
   (PGconn *conn, const char *stmtName, const char *query, int nParams, const Oid *paramTypes),
   (conn, stmtName, query, nParams, paramTypes), NULL)
PQ(PGresult *, PQexecPrepared,
   (PGconn *conn, const char *stmtName, int nParams, pq_strings paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat),
   (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat), NULL)
PQ(int, PQsendQueryParams,
   (PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
    pq_strings paramValues, const int *paramLengths, const int *paramFormats, int resultFormat),
   (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat),
   0)
PQ(int, PQsendQueryPrepared,
   (PGconn *conn, const char *stmtName, int nParams, pq_strings paramValues,
    const int *paramLengths, const int *paramFormats, int resultFormat),
   (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat), 0)
PQ(int, PQsetSingleRowMode, (PGconn *conn), (conn), 0)
PQ(PGresult *, PQgetResult, (PGconn *conn), (conn), NULL)
PQ(int, PQenterPipelineMode, (PGconn *conn), (conn), 0)
PQ(int, PQexitPipelineMode, (PGconn *conn), (conn), 0)
PQ(int, PQpipelineSync, (PGconn *conn), (conn), 0)
PQ(ExecStatusType, PQresultStatus, (const PGresult *res), (res), PGRES_FATAL_ERROR)
PQ(char *, PQresultErrorMessage, (const PGresult *res), (res), (char *)"")
PQ(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode), NULL)
PQ(int, PQntuples, (const PGresult *res), (res), 0)
PQ(int, PQnfields, (const PGresult *res), (res), 0)
PQ(char *, PQcmdTuples, (PGresult *res), (res), (char *)"")
PQ(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num),
   (res, tup_num, field_num), (char *)"")
PQ(int, PQgetlength, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num),
   0)
PQ(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num), (res, tup_num, field_num),
   1)
PQ_VOID(PQclear, (PGresult *res), (res))
PQ_VOID(PQfreemem, (void *ptr), (ptr))
