/* mcpr.toml holds a token: no diagnostic may quote it (an unquoted token,
 * a token pasted on a line of its own, a token inside an inline table or
 * an array...), and a token file that others can read is a warning. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/toml.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define CANARY "mcpr_9f8eCANARY7c1d2e3f4a5b6c7d8e9f"

/* No piece of the canary that could identify it. */
static void assert_no_canary(const char *doc, const char *text) {
  static const char *const pieces[] = {"9f8e", "CANARY", "7c1d", "8e9f", "mcpr_9"};
  for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++)
    if (strstr(text, pieces[i]))
      fail_msg("the message for\n%s\nquotes the secret: %s", doc, text);
}

/* Documents that do not parse, with the canary where a user might put it. */
static const char *const BROKEN[] = {
    "[cloud]\ntoken = " CANARY "\n",
    "[cloud]\ntoken = " CANARY "\nserver = \"s\"\n",
    "[cloud]\ntoken =" CANARY "\n",
    "cloud = { token = " CANARY " }\n",
    "cloud = { server = \"s\", token = " CANARY ", endpoint = \"https://x\" }\n",
    "[cloud]\ntokens = [ " CANARY " ]\n",
    "[cloud]\ntokens = [ \"a\", " CANARY " ]\n",
    "[cloud]\ntokens = [ \"a\" " CANARY " ]\n",
    "[cloud]\ntoken = \"a\" " CANARY "\n",
    "[cloud]\ntoken \"" CANARY "\"\n",
    "[cloud]\ntoken " CANARY "\n",
    "[cloud]\n" CANARY "\n",
    CANARY "\n",
    "[cloud]\n" CANARY " = 1\n" CANARY " = 2\n",
    "[" CANARY "]\n[" CANARY "]\n",
    "[[" CANARY "]]\n[" CANARY "]\n",
    CANARY " = 1\n[" CANARY "]\n",
    CANARY " = 1\n[[" CANARY "]]\n",
    CANARY " = 1\n" CANARY ".x = 2\n",
    "[cloud]\ntoken = \"" CANARY "\\q\"\n",
    "[cloud]\ntoken = \"" CANARY "\n",
    "[cloud]\ntoken = '" CANARY "\n",
    "[cloud]\ntoken = \"\"\"" CANARY "\n",
    "[cloud]\ntoken = \"" CANARY "\x01\"\n",
    "[cloud]\ntoken = { a = " CANARY " }\n",
    "[cloud]\ntoken = [[ " CANARY " ]]\n",
    "[cloud]\ntoken = 9f8e7c1d2e3f\n",
    "[cloud]\ntoken = " CANARY "T12:00:00\n",
    "[cloud]\ntoken = 9f8e-7c1d-2e3f-4a5b\n",
    "[cloud\ntoken = \"" CANARY "\"\n",
    "[cloud] " CANARY "\n",
};

static void test_toml_errors_never_quote_values(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof BROKEN / sizeof *BROKEN; i++) {
    mcpr__toml_value *r = NULL;
    mcpr__toml_error e;
    if (mcpr__toml_parse(BROKEN[i], strlen(BROKEN[i]), &r, &e))
      fail_msg("parsed:\n%s", BROKEN[i]);
    assert_true(e.line > 0 && e.column > 0);
    assert_no_canary(BROKEN[i], e.message);
  }
}

/* The key is named, the value is not, and the message says what to do. */
static void test_unquoted_token_message(void **state) {
  (void)state;
  const char *doc = "[cloud]\ntoken = " CANARY "\n";
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_config_load_string(doc, strlen(doc), "mcpr.toml", &cfg, &err), MCPR_EPARSE);
  assert_no_canary(doc, err.message);
  assert_non_null(strstr(err.message, "mcpr.toml:2:9: "));
  assert_non_null(strstr(err.message, "expected a value for the key 'token'"));
  assert_non_null(strstr(err.message, "quoted"));
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++)
    assert_no_canary(doc, mcpr_config_diag_at(cfg, i)->message);
  mcpr_config_free(cfg);

  /* inside an inline table: the inner key */
  doc = "cloud = { server = \"s\", token = " CANARY " }\n";
  assert_int_equal(mcpr_config_load_string(doc, strlen(doc), "mcpr.toml", &cfg, &err), MCPR_EPARSE);
  assert_non_null(strstr(err.message, "for the key 'token'"));
  mcpr_config_free(cfg);

  /* a token pasted as a line of its own is no key name to show */
  doc = "[cloud]\n" CANARY "\n";
  assert_int_equal(mcpr_config_load_string(doc, strlen(doc), "mcpr.toml", &cfg, &err), MCPR_EPARSE);
  assert_no_canary(doc, err.message);
  assert_non_null(strstr(err.message, "mcpr.toml:2:"));
  assert_non_null(strstr(err.message, "not shown"));
  mcpr_config_free(cfg);
}

/* Documents that parse but hold findings: none quotes the secret. */
static void test_config_findings_never_quote_values(void **state) {
  (void)state;
  static const char *const DOCS[] = {
      "[cloud]\n" CANARY " = \"x\"\n",
      "\"" CANARY "\" = 1\n",
      "[cloud]\ntoken = 5\nserver = \"" CANARY "\"\nendpoint = \"ftp://" CANARY "\"\n",
      "[cloud]\ntoken = [\"" CANARY "\"]\n",
      "[store]\npath = \"" CANARY "\"\nname = 1\n",
      "cloud = \"" CANARY "\"\n",
  };
  for (size_t i = 0; i < sizeof DOCS / sizeof *DOCS; i++) {
    mcpr_config *cfg = NULL;
    mcpr_error err = {0};
    mcpr_config_load_string(DOCS[i], strlen(DOCS[i]), "mcpr.toml", &cfg, &err);
    assert_non_null(cfg);
    assert_true(mcpr_config_diag_count(cfg) > 0);
    assert_no_canary(DOCS[i], err.message);
    for (size_t j = 0; j < mcpr_config_diag_count(cfg); j++)
      assert_no_canary(DOCS[i], mcpr_config_diag_at(cfg, j)->message);
    mcpr_config_free(cfg);
  }
}

/* The writer refuses a file that does not parse without quoting it. */
static void test_writer_errors_never_quote_values(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof BROKEN / sizeof *BROKEN; i++) {
    char *out = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_config_set_cloud_text(BROKEN[i], strlen(BROKEN[i]), "mcpr_new0123456789",
                                                NULL, NULL, &out, &err),
                     MCPR_EPARSE);
    assert_null(out);
    assert_no_canary(BROKEN[i], err.message);
  }
  const char *inline_cloud = "cloud = { token = \"" CANARY "\" }\n";
  char *out = NULL;
  mcpr_error err = {0};
  assert_int_not_equal(mcpr_config_set_cloud_text(inline_cloud, strlen(inline_cloud), NULL, "srv",
                                                  NULL, &out, &err),
                       MCPR_OK);
  assert_no_canary(inline_cloud, err.message);
}

static void write_mode(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_int_equal(chmod(path, mode), 0);
}

static const mcpr_config_diag *risk(const mcpr_config *cfg) {
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++)
    if (mcpr_config_diag_at(cfg, i)->secret_at_risk)
      return mcpr_config_diag_at(cfg, i);
  return NULL;
}

static void test_token_file_mode_warning(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "mcpr.toml");
  const char *with_token = "name = \"p\"\n[cloud]\ntoken = \"" CANARY "\"\nbogus = 1\n";
  static const struct {
    mode_t mode;
    const char *who;
  } open_modes[] = {{0644, "group and others"}, {0640, "group"}, {0604, "others"},
                    {0666, "group and others"}};
  for (size_t i = 0; i < sizeof open_modes / sizeof *open_modes; i++) {
    write_mode(path, with_token, open_modes[i].mode);
    mcpr_config *cfg = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_config_load(path, &cfg, &err), MCPR_OK); /* a warning, not an error */
    const mcpr_config_diag *d = risk(cfg);
    assert_non_null(d);
    assert_ptr_equal(d, mcpr_config_diag_at(cfg, 0)); /* about the whole file: first */
    assert_int_equal(d->severity, MCPR_CONFIG_WARNING);
    assert_int_equal(d->line, 0);
    char want[64];
    snprintf(want, sizeof want, "that %s can read (mode %04o)", open_modes[i].who,
             (unsigned)open_modes[i].mode);
    assert_non_null(strstr(d->message, want));
    char fix[1100];
    snprintf(fix, sizeof fix, "chmod 600 %s", path);
    assert_non_null(strstr(d->message, fix));
    assert_no_canary(with_token, d->message);
    assert_int_equal(mcpr_config_error_count(cfg), 0);
    assert_int_equal(mcpr_config_diag_count(cfg), 2); /* and the unknown key */
    mcpr_config_free(cfg);
  }
  /* 0600 (and 0400): nothing to say */
  mode_t closed_modes[] = {0600, 0400};
  for (size_t i = 0; i < 2; i++) {
    write_mode(path, with_token, closed_modes[i]);
    mcpr_config *cfg = NULL;
    assert_int_equal(mcpr_config_load(path, &cfg, NULL), MCPR_OK);
    assert_null(risk(cfg));
    mcpr_config_free(cfg);
  }
  /* no token: a readable file is fine */
  write_mode(path, "name = \"p\"\n[cloud]\nserver = \"s\"\n", 0644);
  mcpr_config *cfg = NULL;
  assert_int_equal(mcpr_config_load(path, &cfg, NULL), MCPR_OK);
  assert_int_equal(mcpr_config_diag_count(cfg), 0);
  mcpr_config_free(cfg);
  /* a file with errors still gets the warning */
  write_mode(path, "port = \"x\"\n[cloud]\ntoken = \"" CANARY "\"\n", 0644);
  assert_int_equal(mcpr_config_load(path, &cfg, NULL), MCPR_EPARSE);
  assert_non_null(risk(cfg));
  assert_int_equal(mcpr_config_error_count(cfg), 1);
  mcpr_config_free(cfg);
  /* from text there is no file, so no mode */
  assert_int_equal(mcpr_config_load_string(with_token, strlen(with_token), "x", &cfg, NULL),
                   MCPR_OK);
  assert_null(risk(cfg));
  mcpr_config_free(cfg);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toml_errors_never_quote_values),
      cmocka_unit_test(test_unquoted_token_message),
      cmocka_unit_test(test_config_findings_never_quote_values),
      cmocka_unit_test(test_writer_errors_never_quote_values),
      cmocka_unit_test(test_token_file_mode_warning),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
