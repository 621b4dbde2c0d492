/*
 * writer.c — set [cloud] token/server/endpoint in mcpr.toml in place.
 *
 * Users keep comments and their own order in mcpr.toml, so the writer never
 * re-serialises the tree. It parses the file only to learn where things
 * are (every TOML value keeps its byte span), then splices:
 *   - an existing value: its text is replaced, the key, spacing and any
 *     trailing comment on the line stay;
 *   - a missing key: a line is added after the last key of the cloud table,
 *     written the same way as that key (so `cloud.server = ...` at the top
 *     level gets a `cloud.token = ...` neighbour), or right after the
 *     [cloud] header;
 *   - no cloud table: `[cloud]` and the keys are appended at the end.
 * The result is parsed again and must read back the values written, so a
 * file is never replaced by one that mcpr itself cannot read. The file is
 * replaced atomically (temp file in the same directory, fsync, rename).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "config/config_internal.h"
#include "config/toml.h"
#include "mcpr/config.h"

typedef struct edit {
  size_t start, end; /* replaced byte range (start == end: insertion) */
  char *text;        /* new text (owned) */
} edit;

/* The new file's text; oom sticks, so building goes on and fails once. */
typedef struct outbuf {
  mcpr__buf b;
  bool oom;
} outbuf;

static void out_add(outbuf *b, const char *s, size_t n) {
  if (!b->oom && n && !mcpr__buf_add(&b->b, s, n))
    b->oom = true;
}

static void out_str(outbuf *b, const char *s) { out_add(b, s, strlen(s)); }

/* A TOML basic string for s, quotes included. */
static void out_quoted(outbuf *b, const char *s) {
  out_add(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char esc[8];
    if (*c == '"' || *c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*c;
      out_add(b, esc, 2);
    } else if (*c < 0x20 || *c == 0x7f) {
      snprintf(esc, sizeof esc, "\\u%04x", *c);
      out_add(b, esc, 6);
    } else {
      out_add(b, (const char *)c, 1);
    }
  }
  out_add(b, "\"", 1);
}

static int edit_cmp(const void *a, const void *b) {
  const edit *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* The offset just after the newline ending the line that holds pos. */
static size_t line_end_after(const char *text, size_t len, size_t pos) {
  while (pos < len && text[pos] != '\n')
    pos++;
  return pos < len ? pos + 1 : len;
}

mcpr_status mcpr_config_set_cloud_text(const char *text, size_t len, const char *token,
                                       const char *server, const char *endpoint, char **out,
                                       mcpr_error *err) {
  *out = NULL;
  const char *keys[3] = {"token", "server", "endpoint"};
  const char *vals[3] = {token, server, endpoint};
  edit edits[4] = {{0}};
  size_t n_edits = 0;
  outbuf added = {0}; /* lines for keys the cloud table does not have yet */
  mcpr_status st = MCPR_OK;
  mcpr__toml_value *root = NULL;
  mcpr__toml_error te;
  outbuf res = {0};

  if (!mcpr__toml_parse(text ? text : "", len, &root, &te)) {
    if (te.out_of_memory)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
    return mcpr_error_set(err, MCPR_EPARSE, "cannot update the config: line %d, column %d: %s",
                          te.line, te.column, te.message);
  }
  mcpr__toml_entry *ce = mcpr__toml_find(root, "cloud");
  mcpr__toml_value *cloud = ce ? ce->value : NULL;
  if (cloud && cloud->type != MCPR__TOML_TABLE) {
    st = mcpr_error_set(err, MCPR_EPARSE, "cannot update the config: 'cloud' at line %d is %s, "
                        "not a table", ce->line, mcpr__toml_type_name(cloud->type));
    goto out;
  }
  /* The key after which new keys go: the last plain value of the table. */
  const mcpr__toml_entry *ref = NULL;
  for (size_t i = 0; cloud && i < cloud->n_entries; i++) {
    const mcpr__toml_entry *e = &cloud->entries[i];
    if (e->value->type != MCPR__TOML_TABLE && (!ref || e->value->end > ref->value->end))
      ref = e;
  }
  for (int k = 0; k < 3; k++) {
    if (!vals[k])
      continue;
    mcpr__toml_entry *e = mcpr__toml_find(cloud, keys[k]);
    outbuf q = {0};
    out_quoted(&q, vals[k]);
    if (q.oom) {
      free(q.b.p);
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
      goto out;
    }
    if (e) {
      edits[n_edits++] = (edit){e->value->start, e->value->end, q.b.p};
      continue;
    }
    if (cloud && cloud->is_inline) {
      free(q.b.p);
      st = mcpr_error_set(err, MCPR_EINVAL,
                          "cannot add cloud.%s: [cloud] is an inline table (line %d); "
                          "write it as a [cloud] section or add the key by hand",
                          keys[k], ce->line);
      goto out;
    }
    if (ref) {
      out_add(&added, text + ref->line_start, ref->stmt_start - ref->line_start);
      out_add(&added, text + ref->stmt_start, ref->key_start - ref->stmt_start);
    }
    out_str(&added, keys[k]);
    out_str(&added, " = ");
    out_str(&added, q.b.p);
    out_str(&added, "\n");
    free(q.b.p);
  }
  if (added.oom) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
    goto out;
  }
  if (added.b.n) {
    outbuf ins = {0};
    size_t at;
    if (ref) {
      at = line_end_after(text, len, ref->value->end);
    } else if (cloud && cloud->header_defined) {
      at = cloud->header_end;
    } else {
      at = len;
      if (len && text[len - 1] != '\n')
        out_str(&ins, "\n");
      if (len)
        out_str(&ins, "\n");
      out_str(&ins, "[cloud]\n");
    }
    if (at == len && len && text[len - 1] != '\n' && (ref || (cloud && cloud->header_defined)))
      out_str(&ins, "\n");
    out_add(&ins, added.b.p, added.b.n);
    if (ins.oom) {
      free(ins.b.p);
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
      goto out;
    }
    edits[n_edits++] = (edit){at, at, ins.b.p};
  }
  qsort(edits, n_edits, sizeof *edits, edit_cmp);
  size_t pos = 0;
  for (size_t i = 0; i < n_edits; i++) {
    out_add(&res, text + pos, edits[i].start - pos);
    out_str(&res, edits[i].text);
    pos = edits[i].end;
  }
  out_add(&res, text ? text + pos : "", len - pos);
  if (res.oom) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
    goto out;
  }

  /* Read it back: the new file must parse and hold what we wrote. */
  mcpr_config *check = NULL;
  mcpr_error cerr = {0};
  mcpr_status cst = mcpr_config_load_string(res.b.p, res.b.n, "mcpr.toml", &check, &cerr);
  bool same = check && (!token || (check->cloud.token && !strcmp(check->cloud.token, token))) &&
              (!server || (check->cloud.server && !strcmp(check->cloud.server, server))) &&
              (!endpoint || (check->cloud.endpoint && !strcmp(check->cloud.endpoint, endpoint)));
  if (cst == MCPR_ENOMEM || (!check && cst != MCPR_OK && cerr.status == MCPR_ENOMEM)) {
    mcpr_config_free(check);
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the config");
    goto out;
  }
  if (!same || !check) {
    st = mcpr_error_set(err, MCPR_EPARSE,
                        "cannot update the config safely: the result would not read back "
                        "(its [cloud] table may be split across sections); edit it by hand");
    mcpr_config_free(check);
    goto out;
  }
  mcpr_config_free(check);
  *out = res.b.p;
  res.b.p = NULL;
out:
  for (size_t i = 0; i < n_edits; i++)
    free(edits[i].text);
  free(added.b.p);
  free(res.b.p);
  mcpr__toml_free(root);
  return st;
}

/* Write data to path atomically with mode. */
static mcpr_status write_atomic(const char *path, const char *data, size_t len, mode_t mode,
                                mcpr_error *err) {
  mcpr_status st = MCPR_OK;
  char dirbuf[PATH_MAX], basebuf[PATH_MAX], tmp[PATH_MAX];
  snprintf(dirbuf, sizeof dirbuf, "%s", path);
  snprintf(basebuf, sizeof basebuf, "%s", path);
  const char *dir = dirname(dirbuf);
  const char *base = basename(basebuf);
  if (snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, base) >= (int)sizeof tmp)
    return mcpr_error_set(err, MCPR_EINVAL, "config path is too long");
  int fd = mkstemp(tmp);
  if (fd < 0)
    return mcpr_error_set(err, MCPR_EIO, "cannot write the config in %s: %s", dir, strerror(errno));
  if (fchmod(fd, mode) != 0) {
    st = mcpr_error_set(err, MCPR_EIO, "cannot set the mode of %s: %s", tmp, strerror(errno));
    goto fail;
  }
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      st = mcpr_error_set(err, errno == ENOSPC ? MCPR_EDISKFULL : MCPR_EIO,
                          "cannot write the config: %s", strerror(errno));
      goto fail;
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) {
    st = mcpr_error_set(err, MCPR_EIO, "cannot write the config: %s", strerror(errno));
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    st = mcpr_error_set(err, MCPR_EIO, "cannot write the config: %s", strerror(errno));
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    st = mcpr_error_set(err, MCPR_EIO, "cannot replace %s: %s", path, strerror(errno));
    goto fail;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)fsync(dfd); /* best effort: the rename is already visible */
    close(dfd);
  }
  return MCPR_OK;
fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  return st;
}

mcpr_status mcpr_config_set_cloud(const char *path, const char *token, const char *server,
                                  const char *endpoint, mcpr_error *err) {
  const char *p = path && *path ? path : MCPR_CONFIG_DEFAULT_PATH;
  char *text = NULL, *updated = NULL;
  size_t len = 0;
  bool exists = false;
  char real[PATH_MAX];
  mcpr_status st = mcpr__config_read_file(p, true, &text, &len, &exists, NULL, err);
  if (st != MCPR_OK)
    return st;
  /* Write through a symlink to its target rather than replacing the link. */
  if (exists && realpath(p, real))
    p = real;
  mode_t mode = 0644;
  struct stat sb;
  if (exists && stat(p, &sb) == 0)
    mode = sb.st_mode & 0777;
  st = mcpr_config_set_cloud_text(text, len, token, server, endpoint, &updated, err);
  if (st != MCPR_OK)
    goto out;
  mcpr_config *now = NULL;
  mcpr_error ignored = {0};
  mcpr_config_load_string(updated, strlen(updated), p, &now, &ignored);
  if (now && now->cloud.token)
    mode = 0600; /* a secret: owner only */
  mcpr_config_free(now);
  st = write_atomic(p, updated, strlen(updated), mode, err);
out:
  free(text);
  free(updated);
  return st;
}
