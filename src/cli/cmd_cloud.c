/* cmd_cloud.c — `mcpr cloud status|flush` (being written). */
#include "cli.h"
#include "mcpr/config.h"
#include "mcpr/sink.h"

mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err);

mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err) {
  (void)cfg;
  (void)store_path;
  *out = NULL;
  return mcpr_error_set(err, MCPR_EINVAL, "the cloud sink is not available in this build yet");
}
