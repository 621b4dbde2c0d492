/* mcpr.h — everything public in libmcpr. */
#ifndef MCPR_MCPR_H
#define MCPR_MCPR_H

#include "cloud.h"
#include "config.h"
#include "error.h"
#include "event.h"
#include "query.h"
#include "sink.h"
#include "store.h"
#include "util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Library version, e.g. "0.1.0" (static). */
MCPR_API const char *mcpr_version(void);

#ifdef __cplusplus
}
#endif
#endif
