/*
 * schema_diff.h — internal: the schema_changes rows for a new schema
 * payload (SPEC §5), independent of SQL so it can be tested alone.
 */
#ifndef MCPR__CORE_SCHEMA_DIFF_H
#define MCPR__CORE_SCHEMA_DIFF_H

/* Called once per change row; item_name may be NULL. Return non-zero to
 * stop (that value is returned by mcpr__schema_diff). */
typedef int (*mcpr__schema_change_fn)(void *ctx, const char *change_type,
                                      const char *item_name);

/*
 * For the list methods (tools/list, resources/list,
 * resources/templates/list, prompts/list) report <type>_added,
 * <type>_modified, <type>_removed per item keyed by `name`, in the order:
 * new items as they appear in the new payload (added or modified), then
 * removed items as they appeared in the old one. Any other method, a
 * payload that is not JSON, or no item-level difference: one `updated`
 * row with no item name. Returns 0, or the callback's non-zero value, or
 * -1 when out of memory.
 */
int mcpr__schema_diff(const char *method, const char *old_payload, const char *new_payload,
                      mcpr__schema_change_fn fn, void *ctx);

#endif
