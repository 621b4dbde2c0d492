#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/process.h"
#include "core/schema_diff.h"

static const struct {
  const char *method, *array, *type;
} LIST_METHODS[] = {
    {"tools/list", "tools", "tool"},
    {"resources/list", "resources", "resource"},
    {"resources/templates/list", "resourceTemplates", "resource_template"},
    {"prompts/list", "prompts", "prompt"},
};


/* The payload's item array (a new reference), or NULL when the payload
 * has none. *oom is set when the parse ran out of memory: that is not a
 * payload without items, and must not be recorded as an `updated` change.
 * jansson 2.14 can also absorb a failed allocation (akheron/jansson#362),
 * hence the per-thread failure count as well as the error code. */
static json_t *items_of(const char *payload, const char *array, bool *oom) {
  json_error_t jerr;
  unsigned long failures = mcpr__json_alloc_failures();
  json_t *root = json_loads(payload, JSON_REJECT_DUPLICATES, &jerr);
  /* jansson leaves the error empty when its first allocation fails. */
  if (mcpr__json_alloc_failures() != failures ||
      (!root && (json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0]))) {
    *oom = true;
    json_decref(root);
    return NULL;
  }
  if (!root)
    return NULL;
  json_t *items = json_object_get(root, array);
  if (!json_is_array(items)) {
    json_decref(root);
    return NULL;
  }
  json_incref(items);
  json_decref(root);
  return items;
}

static json_t *find_named(json_t *items, const char *name) {
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    const char *n = json_string_value(json_object_get(it, "name"));
    if (n && strcmp(n, name) == 0)
      return it;
  }
  return NULL;
}

static int emit(mcpr__schema_change_fn fn, void *ctx, const char *type, const char *what,
                const char *name, int *rows) {
  char change[64];
  snprintf(change, sizeof change, "%s_%s", type, what);
  (*rows)++;
  return fn(ctx, change, name);
}

int mcpr__schema_diff(const char *method, const char *old_payload, const char *new_payload,
                      mcpr__schema_change_fn fn, void *ctx) {
  const char *array = NULL, *type = NULL;
  for (size_t i = 0; i < sizeof LIST_METHODS / sizeof LIST_METHODS[0]; i++)
    if (strcmp(method, LIST_METHODS[i].method) == 0) {
      array = LIST_METHODS[i].array;
      type = LIST_METHODS[i].type;
    }
  int rows = 0, rc = 0;
  json_t *old_items = NULL, *new_items = NULL;
  if (array) {
    bool oom = false;
    old_items = items_of(old_payload, array, &oom);
    new_items = items_of(new_payload, array, &oom);
    if (oom) {
      rc = -1;
      goto out;
    }
  }
  if (old_items && new_items) {
    size_t i;
    json_t *it;
    /* Lists are small (tens of items): quadratic lookup is cheaper than
     * building a map. */
    json_array_foreach(new_items, i, it) {
      const char *name = json_string_value(json_object_get(it, "name"));
      if (!name)
        continue;
      json_t *prev = find_named(old_items, name);
      if (!prev)
        rc = emit(fn, ctx, type, "added", name, &rows);
      else if (!json_equal(prev, it))
        rc = emit(fn, ctx, type, "modified", name, &rows);
      if (rc)
        goto out;
    }
    json_array_foreach(old_items, i, it) {
      const char *name = json_string_value(json_object_get(it, "name"));
      if (name && !find_named(new_items, name)) {
        rc = emit(fn, ctx, type, "removed", name, &rows);
        if (rc)
          goto out;
      }
    }
  }
  if (rows == 0)
    rc = fn(ctx, "updated", NULL);
out:
  json_decref(old_items);
  json_decref(new_items);
  return rc;
}
