/*
 * event.c — proxy events: JSON decode/encode, copy (the mapping onto the
 * store lives with the store sink, store_sink.c).
 *
 * Each event type is described once, by a table of its fields (wire name,
 * kind, required or not, where it lives in the struct). Decode, encode,
 * copy and release are loops over that table, so the five types cannot
 * drift apart and the wire order is the table order.
 *
 * JSON text is written by mcpr__json_dumps (core/json_text.h): jansson's
 * compact form, with reals in the fewest digits that read back the same,
 * so a schema payload's 0.1 stays 0.1 in the store.
 *
 * Decoding bounds the input before jansson sees it: the length, NUL bytes
 * and the nesting depth (jansson's own limit is 2048, far too deep for a
 * hostile line) are checked by a single scan of the bytes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"
#include "core/process.h"
#include "mcpr/event.h"

typedef enum field_kind {
  F_STR,  /* JSON string */
  F_INT,  /* JSON integer */
  F_CODE, /* JSON string or integer, kept as a string */
  F_JSON, /* any JSON value, kept as compact text */
} field_kind;

enum {
  F_REQUIRED = 1 << 0,
  F_OMIT = 1 << 1,    /* left out of the JSON when absent (not null) */
  F_NONNEG = 1 << 2,  /* integer must be >= 0 */
  F_HTTP = 1 << 3,    /* integer must be an HTTP status 100..999 */
  F_OBJECT = 1 << 4,  /* JSON field must be an object */
  F_US = 1 << 5,      /* a duration: at most MCPR_EVENT_DURATION_US_MAX */
  F_BYTES = 1 << 6,   /* a size: at most MCPR_EVENT_SIZE_BYTES_MAX */
  F_TIMINGS = 1 << 7, /* stage timings: an array of {name, elapsed_us}, or an object */
};

typedef struct field {
  const char *name;
  field_kind kind;
  unsigned flags;
  size_t offset; /* from the start of mcpr_event */
} field;

#define FLD(member, fname, kind, flags)                                                  \
  { #fname, kind, flags, offsetof(mcpr_event, u) + offsetof(member, fname) }
#define SERVER_FIELD {"server", F_STR, F_OMIT, offsetof(mcpr_event, server)}

static const field REQUEST_FIELDS[] = {
    FLD(mcpr_event_request, id, F_STR, F_REQUIRED),
    FLD(mcpr_event_request, ts, F_INT, F_REQUIRED | F_NONNEG),
    FLD(mcpr_event_request, proxy, F_STR, F_REQUIRED),
    FLD(mcpr_event_request, session_id, F_STR, 0),
    FLD(mcpr_event_request, method, F_STR, F_REQUIRED),
    FLD(mcpr_event_request, path, F_STR, 0),
    FLD(mcpr_event_request, mcp_method, F_STR, 0),
    FLD(mcpr_event_request, tool, F_STR, 0),
    FLD(mcpr_event_request, resource_uri, F_STR, 0),
    FLD(mcpr_event_request, prompt_name, F_STR, 0),
    FLD(mcpr_event_request, status, F_INT, F_REQUIRED | F_HTTP),
    FLD(mcpr_event_request, latency_us, F_INT, F_REQUIRED | F_NONNEG | F_US),
    FLD(mcpr_event_request, upstream_us, F_INT, F_NONNEG | F_US),
    FLD(mcpr_event_request, request_size, F_INT, F_NONNEG | F_BYTES),
    FLD(mcpr_event_request, response_size, F_INT, F_NONNEG | F_BYTES),
    FLD(mcpr_event_request, error_code, F_CODE, 0),
    FLD(mcpr_event_request, error_msg, F_STR, 0),
    FLD(mcpr_event_request, client_name, F_STR, 0),
    FLD(mcpr_event_request, client_version, F_STR, 0),
    FLD(mcpr_event_request, note, F_STR, 0),
    FLD(mcpr_event_request, stage_timings, F_JSON, F_OMIT | F_TIMINGS),
    SERVER_FIELD,
};

static const field SESSION_START_FIELDS[] = {
    FLD(mcpr_event_session_start, session_id, F_STR, F_REQUIRED),
    FLD(mcpr_event_session_start, proxy, F_STR, F_REQUIRED),
    FLD(mcpr_event_session_start, ts, F_INT, F_REQUIRED | F_NONNEG),
    FLD(mcpr_event_session_start, client_name, F_STR, 0),
    FLD(mcpr_event_session_start, client_version, F_STR, 0),
    FLD(mcpr_event_session_start, client_platform, F_STR, 0),
    SERVER_FIELD,
};

static const field SESSION_END_FIELDS[] = {
    FLD(mcpr_event_session_end, session_id, F_STR, F_REQUIRED),
    FLD(mcpr_event_session_end, ts, F_INT, F_REQUIRED | F_NONNEG),
    SERVER_FIELD,
};

static const field HEARTBEAT_FIELDS[] = {
    FLD(mcpr_event_heartbeat, ts, F_INT, F_REQUIRED | F_NONNEG),
    FLD(mcpr_event_heartbeat, proxy, F_STR, 0),
    FLD(mcpr_event_heartbeat, mcp_status, F_STR, 0),
    FLD(mcpr_event_heartbeat, tunnel_status, F_STR, 0),
    FLD(mcpr_event_heartbeat, uptime_secs, F_INT, F_NONNEG),
    FLD(mcpr_event_heartbeat, request_count, F_INT, F_NONNEG),
    SERVER_FIELD,
};

static const field SCHEMA_FIELDS[] = {
    FLD(mcpr_event_schema_version, ts, F_INT, F_REQUIRED | F_NONNEG),
    FLD(mcpr_event_schema_version, upstream_id, F_STR, F_REQUIRED),
    FLD(mcpr_event_schema_version, upstream_url, F_STR, F_REQUIRED),
    FLD(mcpr_event_schema_version, method, F_STR, F_REQUIRED),
    FLD(mcpr_event_schema_version, version, F_INT, F_NONNEG),
    FLD(mcpr_event_schema_version, version_id, F_STR, 0),
    FLD(mcpr_event_schema_version, content_hash, F_STR, F_REQUIRED),
    FLD(mcpr_event_schema_version, payload, F_JSON, F_REQUIRED),
    SERVER_FIELD,
};

typedef struct type_desc {
  mcpr_event_type type;
  const char *name;
  const field *fields;
  size_t nfields;
} type_desc;

#define TD(t, n, f) {t, n, f, sizeof f / sizeof f[0]}
static const type_desc TYPES[] = {
    TD(MCPR_EVENT_REQUEST, "request", REQUEST_FIELDS),
    TD(MCPR_EVENT_SESSION_START, "session_start", SESSION_START_FIELDS),
    TD(MCPR_EVENT_SESSION_END, "session_end", SESSION_END_FIELDS),
    TD(MCPR_EVENT_HEARTBEAT, "heartbeat", HEARTBEAT_FIELDS),
    TD(MCPR_EVENT_SCHEMA_VERSION_CREATED, "schema_version_created", SCHEMA_FIELDS),
};

static const type_desc *desc_of(mcpr_event_type type) {
  for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (TYPES[i].type == type)
      return &TYPES[i];
  return NULL;
}

const char *mcpr_event_type_name(mcpr_event_type type) {
  const type_desc *d = desc_of(type);
  return d ? d->name : NULL;
}

static char **str_at(mcpr_event *ev, const field *f) { return (char **)((char *)ev + f->offset); }
static char *const *cstr_at(const mcpr_event *ev, const field *f) {
  return (char *const *)((const char *)ev + f->offset);
}
static int64_t *int_at(mcpr_event *ev, const field *f) { return (int64_t *)((char *)ev + f->offset); }
static const int64_t *cint_at(const mcpr_event *ev, const field *f) {
  return (const int64_t *)((const char *)ev + f->offset);
}

void mcpr_event_init(mcpr_event *ev, mcpr_event_type type) {
  memset(ev, 0, sizeof *ev);
  ev->type = type;
  const type_desc *d = desc_of(type);
  if (!d)
    return;
  for (size_t i = 0; i < d->nfields; i++)
    if (d->fields[i].kind == F_INT)
      *int_at(ev, &d->fields[i]) = MCPR_EVENT_ABSENT;
}

void mcpr_event_release(mcpr_event *ev) {
  if (!ev)
    return;
  const type_desc *d = desc_of(ev->type);
  if (d)
    for (size_t i = 0; i < d->nfields; i++)
      if (d->fields[i].kind != F_INT)
        free(*str_at(ev, &d->fields[i]));
  memset(ev, 0, sizeof *ev);
}

/*
 * One pass over the raw bytes: refuse NUL bytes and nesting deeper than
 * MCPR_EVENT_DEPTH_MAX before jansson builds anything.
 */
static mcpr_status scan_bounds(const char *text, size_t len, mcpr_error *err) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == 0)
      return mcpr_error_set(err, MCPR_EPARSE, "NUL byte at column %zu", i + 1);
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > MCPR_EVENT_DEPTH_MAX)
        return mcpr_error_set(err, MCPR_ETOOBIG,
                              "nesting deeper than %d levels at column %zu",
                              MCPR_EVENT_DEPTH_MAX, i + 1);
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return MCPR_OK;
}

/*
 * The original (MCPR_STAGE_TIMING=1) writes stage timings as an array of
 * {"name": string, "elapsed_us": integer} in execution order; an object
 * (stage → value) was this decoder's first reading and is still taken.
 * Entries may carry other keys; a known key of the wrong type is refused.
 */
static mcpr_status check_timings(const field *f, json_t *v, mcpr_error *err) {
  if (json_is_object(v))
    return MCPR_OK;
  if (!json_is_array(v))
    return mcpr_error_set(err, MCPR_EPARSE,
                          "field \"%s\": expected an array of {name, elapsed_us}", f->name);
  for (size_t i = 0; i < json_array_size(v); i++) {
    json_t *entry = json_array_get(v, i);
    if (!json_is_object(entry))
      return mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": entry %zu: expected an object",
                            f->name, i + 1);
    json_t *name = json_object_get(entry, "name");
    if (name && !json_is_null(name) && !json_is_string(name))
      return mcpr_error_set(err, MCPR_EPARSE,
                            "field \"%s\": entry %zu: \"name\": expected a string", f->name,
                            i + 1);
    json_t *us = json_object_get(entry, "elapsed_us");
    if (us && !json_is_null(us) && (!json_is_integer(us) || json_integer_value(us) < 0))
      return mcpr_error_set(err, MCPR_EPARSE,
                            "field \"%s\": entry %zu: \"elapsed_us\": expected an integer >= 0",
                            f->name, i + 1);
  }
  return MCPR_OK;
}

static mcpr_status decode_field(const field *f, json_t *v, mcpr_event *ev, mcpr_error *err) {
  switch (f->kind) {
  case F_STR: {
    if (!json_is_string(v))
      return mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": expected a string", f->name);
    char *s = strndup(json_string_value(v), json_string_length(v));
    if (!s)
      return mcpr_error_set(err, MCPR_ENOMEM, "field \"%s\": out of memory", f->name);
    *str_at(ev, f) = s;
    return MCPR_OK;
  }
  case F_CODE: {
    char *s = NULL;
    if (json_is_string(v)) {
      s = strndup(json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
      char buf[32];
      snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
      s = strdup(buf);
    } else {
      return mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": expected a string or an integer",
                            f->name);
    }
    if (!s)
      return mcpr_error_set(err, MCPR_ENOMEM, "field \"%s\": out of memory", f->name);
    *str_at(ev, f) = s;
    return MCPR_OK;
  }
  case F_INT: {
    if (!json_is_integer(v))
      return mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": expected an integer", f->name);
    json_int_t n = json_integer_value(v);
    if ((f->flags & F_NONNEG) && n < 0)
      return mcpr_error_set(err, MCPR_ERANGE, "field \"%s\": must not be negative (got %lld)",
                            f->name, (long long)n);
    if ((f->flags & F_HTTP) && (n < 100 || n > 999))
      return mcpr_error_set(err, MCPR_ERANGE,
                            "field \"%s\": expected an HTTP status 100..999 (got %lld)", f->name,
                            (long long)n);
    if (n == MCPR_EVENT_ABSENT)
      return mcpr_error_set(err, MCPR_ERANGE, "field \"%s\": out of range", f->name);
    /* Absurd durations and sizes would only overflow the sums of stats. */
    if ((f->flags & F_US) && n > MCPR_EVENT_DURATION_US_MAX)
      return mcpr_error_set(err, MCPR_ERANGE,
                            "field \"%s\": out of range (got %lld; at most %lld µs, one year)",
                            f->name, (long long)n, (long long)MCPR_EVENT_DURATION_US_MAX);
    if ((f->flags & F_BYTES) && n > MCPR_EVENT_SIZE_BYTES_MAX)
      return mcpr_error_set(err, MCPR_ERANGE,
                            "field \"%s\": out of range (got %lld; at most %lld bytes, 1 TiB)",
                            f->name, (long long)n, (long long)MCPR_EVENT_SIZE_BYTES_MAX);
    *int_at(ev, f) = n;
    return MCPR_OK;
  }
  case F_JSON: {
    if ((f->flags & F_OBJECT) && !json_is_object(v))
      return mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": expected an object", f->name);
    mcpr_status rc;
    if ((f->flags & F_TIMINGS) && (rc = check_timings(f, v, err)) != MCPR_OK)
      return rc;
    char *s = mcpr__json_dumps(v);
    if (!s)
      return mcpr_error_set(err, MCPR_ENOMEM, "field \"%s\": out of memory", f->name);
    *str_at(ev, f) = s;
    return MCPR_OK;
  }
  }
  return mcpr_error_set(err, MCPR_EINVAL, "field \"%s\": bad kind", f->name);
}

mcpr_status mcpr_event_decode(const char *text, size_t len, mcpr_event *out, mcpr_error *err) {
  mcpr_status rc = MCPR_OK;
  json_t *root = NULL;
  memset(out, 0, sizeof *out);
  if (!text)
    return mcpr_error_set(err, MCPR_EINVAL, "no input");
  if (len > 0 && text[len - 1] == '\n')
    len--;
  if (len > 0 && text[len - 1] == '\r')
    len--;
  if (len > MCPR_EVENT_LINE_MAX)
    return mcpr_error_set(err, MCPR_ETOOBIG, "line is %zu bytes, longer than the limit of %d",
                          len, MCPR_EVENT_LINE_MAX);
  if ((rc = scan_bounds(text, len, err)) != MCPR_OK)
    return rc;
  json_error_t jerr;
  unsigned long failed_before = mcpr__json_alloc_failures();
  root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (mcpr__json_alloc_failures() != failed_before) {
    /* jansson may have dropped a byte and carried on: never trust it. */
    json_decref(root);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory decoding an event");
  }
  if (!root) {
    /* jansson can fail an allocation with an empty message (and no
     * error code) as well as with json_error_out_of_memory. */
    if (json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0])
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory decoding an event");
    /* jansson says "unable to decode byte 0x.." for bad UTF-8. */
    if (strstr(jerr.text, "decode byte") || strstr(jerr.text, "UTF-8"))
      return mcpr_error_set(err, MCPR_EPARSE, "invalid UTF-8 at column %d (%s)", jerr.column,
                            jerr.text);
    return mcpr_error_set(err, MCPR_EPARSE, "invalid JSON at column %d: %s", jerr.column,
                          jerr.text);
  }
  if (!json_is_object(root)) {
    rc = mcpr_error_set(err, MCPR_EPARSE, "expected a JSON object");
    goto out;
  }
  json_t *type = json_object_get(root, "type");
  if (!type || json_is_null(type)) {
    rc = mcpr_error_set(err, MCPR_EPARSE, "field \"type\": required");
    goto out;
  }
  if (!json_is_string(type)) {
    rc = mcpr_error_set(err, MCPR_EPARSE, "field \"type\": expected a string");
    goto out;
  }
  const type_desc *d = NULL;
  for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
    if (strcmp(TYPES[i].name, json_string_value(type)) == 0)
      d = &TYPES[i];
  if (!d) {
    rc = mcpr_error_set(err, MCPR_EPARSE, "field \"type\": unknown event type \"%.64s\"",
                        json_string_value(type));
    goto out;
  }
  mcpr_event_init(out, d->type);
  for (size_t i = 0; i < d->nfields; i++) {
    const field *f = &d->fields[i];
    json_t *v = json_object_get(root, f->name);
    if (!v || json_is_null(v)) {
      if (f->flags & F_REQUIRED) {
        rc = mcpr_error_set(err, MCPR_EPARSE, "field \"%s\": required", f->name);
        goto out;
      }
      continue;
    }
    if ((rc = decode_field(f, v, out, err)) != MCPR_OK)
      goto out;
  }
out:
  /* jansson can absorb a failed allocation while reading, too. */
  if (mcpr__json_alloc_failures() != failed_before)
    rc = mcpr_error_set(err, MCPR_ENOMEM, "out of memory decoding an event");
  json_decref(root);
  if (rc != MCPR_OK)
    mcpr_event_release(out);
  return rc;
}

static json_t *encode_field(const field *f, const mcpr_event *ev, mcpr_error *err, bool *absent) {
  *absent = false;
  if (f->kind == F_INT) {
    int64_t n = *cint_at(ev, f);
    if (n == MCPR_EVENT_ABSENT) {
      *absent = true;
      return json_null();
    }
    return json_integer(n);
  }
  const char *s = *cstr_at(ev, f);
  if (!s) {
    *absent = true;
    return json_null();
  }
  if (f->kind == F_JSON) {
    json_error_t jerr;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);
    if (!v)
      mcpr_error_set(err, MCPR_EINVAL, "field \"%s\": not valid JSON: %s", f->name, jerr.text);
    return v;
  }
  json_t *v = json_string(s);
  if (!v)
    mcpr_error_set(err, MCPR_EINVAL, "field \"%s\": not valid UTF-8", f->name);
  return v;
}

char *mcpr_event_encode(const mcpr_event *ev, size_t *len_out, mcpr_error *err) {
  char *text = NULL;
  const type_desc *d = ev ? desc_of(ev->type) : NULL;
  if (!d) {
    mcpr_error_set(err, MCPR_EINVAL, "unknown event type");
    return NULL;
  }
  unsigned long failed_before = mcpr__json_alloc_failures();
  json_t *root = json_object();
  if (!root || json_object_set_new(root, "type", json_string(d->name)) != 0)
    goto nomem;
  for (size_t i = 0; i < d->nfields; i++) {
    const field *f = &d->fields[i];
    bool absent;
    json_t *v = encode_field(f, ev, err, &absent);
    if (!v)
      goto fail;
    if (absent && (f->flags & F_REQUIRED)) {
      mcpr_error_set(err, MCPR_EINVAL, "field \"%s\": required", f->name);
      goto fail;
    }
    if (absent && (f->flags & F_OMIT))
      continue;
    if (json_object_set_new(root, f->name, v) != 0)
      goto nomem;
  }
  text = mcpr__json_dumps(root);
  if (!text || mcpr__json_alloc_failures() != failed_before) {
    free(text); /* jansson may have absorbed a failure and lost a byte */
    text = NULL;
    goto nomem;
  }
  json_decref(root);
  if (len_out)
    *len_out = strlen(text);
  return text;
nomem:
  mcpr_error_set(err, MCPR_ENOMEM, "out of memory encoding an event");
fail:
  /* A field that failed for want of memory inside jansson (a string or a
   * parse that came back empty) is out of memory, not bad input. */
  if (mcpr__json_alloc_failures() != failed_before || (err && err->status == MCPR_OK))
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory encoding an event");
  json_decref(root);
  return NULL;
}

mcpr_status mcpr_event_copy(mcpr_event *dst, const mcpr_event *src, mcpr_error *err) {
  const type_desc *d = src ? desc_of(src->type) : NULL;
  if (!d)
    return mcpr_error_set(err, MCPR_EINVAL, "unknown event type");
  *dst = *src;
  /* Null every owned pointer first so a failure half way releases cleanly. */
  for (size_t i = 0; i < d->nfields; i++)
    if (d->fields[i].kind != F_INT)
      *str_at(dst, &d->fields[i]) = NULL;
  for (size_t i = 0; i < d->nfields; i++) {
    const field *f = &d->fields[i];
    if (f->kind == F_INT)
      continue;
    const char *s = *cstr_at(src, f);
    if (s && !(*str_at(dst, f) = strdup(s))) {
      mcpr_event_release(dst);
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory copying an event");
    }
  }
  return MCPR_OK;
}
