/*
 * mcpr__schema_diff() alone (SPEC §5): the change rows for a new schema
 * payload, in order, for each list method; `updated` for other methods, for
 * payloads that are not a list, and when no item changed; no crash on
 * hostile payloads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/schema_diff.h"
#include "testutil.h"

/* The rows a diff reported, as "change_type|item_name" lines. */
typedef struct rows {
  char text[16384];
  size_t len;
  int count;
  int stop_at; /* return non-zero on this row (1-based); 0: never */
} rows;

static int collect(void *ctx, const char *change_type, const char *item_name) {
  rows *r = ctx;
  assert_non_null(change_type);
  int n = snprintf(r->text + r->len, sizeof r->text - r->len, "%s|%s\n", change_type,
                   item_name ? item_name : "-");
  assert_true(n > 0 && (size_t)n < sizeof r->text - r->len);
  r->len += (size_t)n;
  r->count++;
  return r->count == r->stop_at ? 42 : 0;
}

static void assert_diff(const char *method, const char *old_payload, const char *new_payload,
                        const char *want) {
  rows r = {0};
  int rc = mcpr__schema_diff(method, old_payload, new_payload, collect, &r);
  assert_int_equal(rc, 0);
  if (strcmp(r.text, want) != 0)
    fail_msg("%s diff\n  old: %.200s\n  new: %.200s\n--- got ---\n%s--- want ---\n%s", method,
             old_payload, new_payload, r.text, want);
}

static void test_non_list_methods_updated(void **state) {
  (void)state;
  static const char *const methods[] = {"initialize", "tools/call", "resources/read",
                                        "tools/list/extra", "", "TOOLS/LIST"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    assert_diff(methods[i], "{\"tools\":[{\"name\":\"a\"}]}", "{\"tools\":[]}",
                "updated|-\n");
}

static void test_tools_order(void **state) {
  (void)state;
  /* New items in new order (added or modified), then removed in old order. */
  assert_diff("tools/list",
              "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"},"
              "{\"name\":\"d\",\"description\":\"old\"}]}",
              "{\"tools\":[{\"name\":\"d\",\"description\":\"new\"},{\"name\":\"x\"},"
              "{\"name\":\"a\"},{\"name\":\"y\"}]}",
              "tool_modified|d\ntool_added|x\ntool_added|y\ntool_removed|b\ntool_removed|c\n");
}

static void test_each_list_method(void **state) {
  (void)state;
  static const struct {
    const char *method, *array, *type;
  } lists[] = {
      {"tools/list", "tools", "tool"},
      {"resources/list", "resources", "resource"},
      {"resources/templates/list", "resourceTemplates", "resource_template"},
      {"prompts/list", "prompts", "prompt"},
  };
  for (size_t i = 0; i < 4; i++) {
    char old_p[256], new_p[256], want[256], wrong[256];
    snprintf(old_p, sizeof old_p, "{\"%s\":[{\"name\":\"m\",\"v\":1},{\"name\":\"r\"}]}",
             lists[i].array);
    snprintf(new_p, sizeof new_p, "{\"%s\":[{\"name\":\"n\"},{\"name\":\"m\",\"v\":2}]}",
             lists[i].array);
    snprintf(want, sizeof want, "%1$s_added|n\n%1$s_modified|m\n%1$s_removed|r\n",
             lists[i].type);
    assert_diff(lists[i].method, old_p, new_p, want);
    /* The array of another list method is not this method's items. */
    snprintf(wrong, sizeof wrong, "{\"%s\":[{\"name\":\"n\"}]}",
             lists[(i + 1) % 4].array);
    assert_diff(lists[i].method, old_p, wrong, "updated|-\n");
  }
}

static void test_no_item_change_updated(void **state) {
  (void)state;
  const char *p = "{\"tools\":[{\"name\":\"a\",\"x\":1,\"y\":[1,2]}]}";
  assert_diff("tools/list", p, p, "updated|-\n");
  /* Only a top-level field changed. */
  assert_diff("tools/list", "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":\"1\"}",
              "{\"tools\":[{\"name\":\"a\"}],\"nextCursor\":\"2\"}", "updated|-\n");
  /* Reordered items, reordered keys: the same items. */
  assert_diff("tools/list", "{\"tools\":[{\"name\":\"a\",\"x\":1,\"y\":2},{\"name\":\"b\"}]}",
              "{\"tools\":[{\"name\":\"b\"},{\"y\":2,\"name\":\"a\",\"x\":1}]}", "updated|-\n");
  /* Both empty. */
  assert_diff("prompts/list", "{\"prompts\":[]}", "{\"prompts\":[]}", "updated|-\n");
}

static void test_from_and_to_empty_list(void **state) {
  (void)state;
  assert_diff("tools/list", "{\"tools\":[]}", "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
              "tool_added|a\ntool_added|b\n");
  assert_diff("tools/list", "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", "{\"tools\":[]}",
              "tool_removed|a\ntool_removed|b\n");
}

static void test_malformed_payloads_updated(void **state) {
  (void)state;
  const char *good = "{\"tools\":[{\"name\":\"a\"}]}";
  static const char *const bad[] = {
      "",
      "{",
      "not json",
      "{\"tools\":[{\"name\":\"a\"}",
      "{\"tools\":[{\"name\":\"a\"}]} trailing",
      "{\"tools\":{\"name\":\"a\"}}",
      "{\"tools\":null}",
      "{\"tools\":\"a\"}",
      "{}",
      "[{\"name\":\"a\"}]",
      "\"tools\"",
      "42",
      "null",
      "{\"tools\":[{\"name\":\"a\"}],\"tools\":[]}", /* duplicate key */
      "{\"tools\":[{\"name\":\"\xC3\x28\"}]}",        /* invalid UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_diff("tools/list", good, bad[i], "updated|-\n");
    assert_diff("tools/list", bad[i], good, "updated|-\n");
    assert_diff("tools/list", bad[i], bad[i], "updated|-\n");
  }
}

static void test_items_without_name(void **state) {
  (void)state;
  /* Items with no usable name are not reported, but the named ones are. */
  assert_diff("tools/list",
              "{\"tools\":[{\"name\":\"a\"},{\"description\":\"old\"},{\"name\":7}]}",
              "{\"tools\":[{\"description\":\"new\"},{\"name\":null},\"str\",5,[],"
              "{\"name\":\"b\"},{\"name\":{\"x\":1}}]}",
              "tool_added|b\ntool_removed|a\n");
  /* Only nameless items changed: no item-level row. */
  assert_diff("tools/list", "{\"tools\":[{\"description\":\"x\"}]}",
              "{\"tools\":[{\"description\":\"y\"},{\"other\":1}]}", "updated|-\n");
}

static void test_names_unicode_and_empty(void **state) {
  (void)state;
  assert_diff("prompts/list", "{\"prompts\":[{\"name\":\"r\xC3\xA9sum\xC3\xA9\"}]}",
              "{\"prompts\":[{\"name\":\"\"},{\"name\":\"\\u00e9t\\u00e9\"}]}",
              "prompt_added|\nprompt_added|\xC3\xA9t\xC3\xA9\nprompt_removed|r\xC3\xA9sum\xC3\xA9\n");
}

static void test_callback_stops(void **state) {
  (void)state;
  rows r = {.stop_at = 2};
  int rc = mcpr__schema_diff("tools/list", "{\"tools\":[{\"name\":\"z\"}]}",
                             "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\"}]}",
                             collect, &r);
  assert_int_equal(rc, 42);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.text, "tool_added|a\ntool_added|b\n");

  rows u = {.stop_at = 1};
  assert_int_equal(mcpr__schema_diff("initialize", "{}", "{}", collect, &u), 42);
  assert_int_equal(u.count, 1);

  /* Stopping on a removed row. */
  rows d = {.stop_at = 1};
  assert_int_equal(mcpr__schema_diff("tools/list", "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}",
                                     "{\"tools\":[]}", collect, &d),
                   42);
  assert_string_equal(d.text, "tool_removed|a\n");
}

/* Deep nesting and large lists: bounded by the parser, no crash. */
static void test_hostile_payloads(void **state) {
  (void)state;
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 64);
  assert_non_null(deep);
  size_t k = 0;
  k += (size_t)snprintf(deep, 32, "{\"tools\":");
  for (size_t i = 0; i < depth; i++)
    deep[k++] = '[';
  for (size_t i = 0; i < depth; i++)
    deep[k++] = ']';
  deep[k++] = '}';
  deep[k] = '\0';
  rows r = {0};
  assert_int_equal(mcpr__schema_diff("tools/list", "{\"tools\":[]}", deep, collect, &r), 0);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.text, "updated|-\n");
  free(deep);

  /* 300 items, every one modified: 300 rows in order. */
  size_t n = 300, cap = n * 40 + 64;
  char *old_p = malloc(cap), *new_p = malloc(cap), *want = malloc(n * 32);
  size_t ko = (size_t)snprintf(old_p, cap, "{\"tools\":[");
  size_t kn = (size_t)snprintf(new_p, cap, "{\"tools\":[");
  size_t kw = 0;
  for (size_t i = 0; i < n; i++) {
    ko += (size_t)snprintf(old_p + ko, cap - ko, "%s{\"name\":\"t%zu\",\"v\":1}", i ? "," : "", i);
    kn += (size_t)snprintf(new_p + kn, cap - kn, "%s{\"name\":\"t%zu\",\"v\":2}", i ? "," : "", i);
    kw += (size_t)snprintf(want + kw, n * 32 - kw, "tool_modified|t%zu\n", i);
  }
  snprintf(old_p + ko, cap - ko, "]}");
  snprintf(new_p + kn, cap - kn, "]}");
  assert_diff("tools/list", old_p, new_p, want);
  free(old_p);
  free(new_p);
  free(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_non_list_methods_updated),
      cmocka_unit_test(test_tools_order),
      cmocka_unit_test(test_each_list_method),
      cmocka_unit_test(test_no_item_change_updated),
      cmocka_unit_test(test_from_and_to_empty_list),
      cmocka_unit_test(test_malformed_payloads_updated),
      cmocka_unit_test(test_items_without_name),
      cmocka_unit_test(test_names_unicode_and_empty),
      cmocka_unit_test(test_callback_stops),
      cmocka_unit_test(test_hostile_payloads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
