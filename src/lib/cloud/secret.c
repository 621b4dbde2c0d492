/*
 * secret.c — showing secrets without showing them (masks, redaction) and
 * reading a JWT's expiry for the login cache.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/cloud.h"

/* Prefixes that say what kind of secret it is without giving any of it. */
static const char *const known_prefixes[] = {"mcpr_", NULL};

#define MASK_MIN_LEN 12

char *mcpr_secret_mask(const char *secret, char *buf, size_t n) {
  if (!n)
    return buf;
  size_t len = secret ? strlen(secret) : 0;
  if (len < MASK_MIN_LEN) {
    snprintf(buf, n, "…");
    return buf;
  }
  const char *prefix = "";
  for (const char *const *p = known_prefixes; *p; p++)
    if (strncmp(secret, *p, strlen(*p)) == 0)
      prefix = *p;
  snprintf(buf, n, "%s…%s", prefix, secret + len - 4);
  return buf;
}

size_t mcpr_secret_redact(char *text, size_t cap, const char *secret) {
  size_t slen = secret ? strlen(secret) : 0;
  if (!text || slen < 8)
    return 0;
  char mask[32];
  mcpr_secret_mask(secret, mask, sizeof mask);
  size_t mlen = strlen(mask);
  size_t count = 0;
  char *at = text;
  while ((at = strstr(at, secret)) != NULL) {
    size_t tail = strlen(at + slen);
    /* the mask is never longer than a secret it masks (>= 12 bytes) */
    if ((size_t)(at - text) + mlen + tail + 1 > cap)
      break;
    memmove(at + mlen, at + slen, tail + 1);
    memcpy(at, mask, mlen);
    at += mlen;
    count++;
  }
  return count;
}

static int b64url_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-' || c == '+')
    return 62;
  if (c == '_' || c == '/')
    return 63;
  return -1;
}

mcpr_status mcpr_jwt_exp(const char *jwt, int64_t *exp_s, mcpr_error *err) {
  *exp_s = 0;
  const char *dot1 = jwt ? strchr(jwt, '.') : NULL;
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot1 || !dot2)
    return mcpr_error_set(err, MCPR_EPARSE, "the login token is not a JWT (header.payload.signature)");
  size_t n = (size_t)(dot2 - dot1 - 1);
  if (n == 0 || n > 16384)
    return mcpr_error_set(err, MCPR_EPARSE, "the login token's payload is empty or too large");
  unsigned char *out = malloc(n * 3 / 4 + 4);
  if (!out)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  mcpr_status st = MCPR_OK;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)dot1[1 + i];
    if (c == '=')
      break;
    int v = b64url_value(c);
    if (v < 0) {
      st = mcpr_error_set(err, MCPR_EPARSE, "the login token's payload is not base64url");
      goto out;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)((acc >> bits) & 0xff);
    }
  }
  json_error_t je;
  json_t *payload = json_loadb((const char *)out, o, 0, &je);
  json_t *exp = json_is_object(payload) ? json_object_get(payload, "exp") : NULL;
  if (json_is_integer(exp))
    *exp_s = json_integer_value(exp);
  else if (json_is_real(exp))
    *exp_s = (int64_t)json_real_value(exp);
  else
    st = mcpr_error_set(err, MCPR_EPARSE, "the login token has no numeric 'exp' claim");
  json_decref(payload);
out:
  free(out);
  return st;
}
