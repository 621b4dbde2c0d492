/*
 * fuzz_toml.c — libFuzzer target for mcpr.toml: the TOML reader
 * (config/toml.h), the config validation on top of it (config.h), and the
 * in-place [cloud] writer, which parses the same untrusted file.
 *
 * Properties beyond "no crash, no leak, no sanitizer report":
 *   - a refused document has an error with a message;
 *   - mcpr_config_load_string always returns a config (with diagnostics)
 *     unless it runs out of memory, and reports MCPR_OK exactly when no
 *     diagnostic is an error;
 *   - when the writer accepts a document, its output parses and the cloud
 *     table holds the three values written, as strings.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "mcpr/config.h"

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *cloud_string(const mcpr__toml_value *root, const char *key) {
  const mcpr__toml_entry *c = mcpr__toml_find(root, "cloud");
  if (!c || c->value->type != MCPR__TOML_TABLE)
    return NULL;
  const mcpr__toml_entry *e = mcpr__toml_find(c->value, key);
  return e && e->value->type == MCPR__TOML_STRING ? e->value->string : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  mcpr__toml_value *root = NULL;
  mcpr__toml_error te;
  memset(&te, 0, sizeof te);
  if (mcpr__toml_parse(text, size, &root, &te)) {
    CHECK(root != NULL && root->type == MCPR__TOML_TABLE);
    mcpr__toml_free(root);
  } else {
    CHECK(root == NULL && te.message[0] != '\0');
  }

  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  mcpr_status st = mcpr_config_load_string(text, size, "fuzz.toml", &cfg, &err);
  CHECK(cfg != NULL || st == MCPR_ENOMEM);
  if (cfg) {
    CHECK((st == MCPR_OK) == (mcpr_config_error_count(cfg) == 0));
    for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++)
      CHECK(mcpr_config_diag_at(cfg, i)->message[0] != '\0');
    mcpr_config_free(cfg);
  }

  static const char token[] = "mcpr_fuzz_token_0123456789", server[] = "fuzz-server",
                    endpoint[] = "https://fuzz.example";
  char *out = NULL;
  if (mcpr_config_set_cloud_text(text, size, token, server, endpoint, &out, &err) == MCPR_OK) {
    CHECK(out != NULL);
    root = NULL;
    CHECK(mcpr__toml_parse(out, strlen(out), &root, &te));
    const char *t = cloud_string(root, "token"), *s = cloud_string(root, "server"),
               *e = cloud_string(root, "endpoint");
    CHECK(t && strcmp(t, token) == 0);
    CHECK(s && strcmp(s, server) == 0);
    CHECK(e && strcmp(e, endpoint) == 0);
    mcpr__toml_free(root);
  }
  free(out);
  return 0;
}
