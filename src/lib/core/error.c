#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mcpr/mcpr.h"

static const struct {
  const char *name;
  const char *message;
} status_table[] = {
#define MCPR__STATUS_ROW(code, name, msg) {name, msg},
    MCPR_STATUS_TABLE(MCPR__STATUS_ROW)
#undef MCPR__STATUS_ROW
};

const char *mcpr_strerror(mcpr_status status) {
  if ((unsigned)status >= MCPR_STATUS_COUNT)
    return "unknown status";
  return status_table[status].message;
}

const char *mcpr_status_name(mcpr_status status) {
  if ((unsigned)status >= MCPR_STATUS_COUNT)
    return "EUNKNOWN";
  return status_table[status].name;
}

void mcpr_error_clear(mcpr_error *err) {
  if (!err)
    return;
  err->status = MCPR_OK;
  err->message[0] = '\0';
}

mcpr_status mcpr_error_set(mcpr_error *err, mcpr_status status, const char *fmt, ...) {
  if (!err)
    return status;
  err->status = status;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  if (n < 0)
    snprintf(err->message, sizeof err->message, "%s", mcpr_strerror(status));
  return status;
}

const char *mcpr_version(void) { return MCPR_VERSION_STRING; }
