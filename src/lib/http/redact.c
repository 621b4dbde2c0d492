/* redact.c — keeping a caller's secrets out of the text the layer returns. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

/* A token shorter than this is not a credential worth hiding, and
 * replacing it would mangle ordinary words (same rule as
 * mcpr_secret_redact). */
#define SECRET_MIN_BYTES 8

static const char DEFAULT_SHOWN_AS[] = "…";

static bool redactable(const mcpr__http_secret *s) {
  return s->value && strlen(s->value) >= SECRET_MIN_BYTES;
}

/* The secret starting at text[i], or NULL. The longest wins, so that a
 * secret containing another is replaced whole. */
static const mcpr__http_secret *secret_at(const char *text, size_t len, size_t i,
                                          const mcpr__http_secret *secrets, size_t n) {
  const mcpr__http_secret *best = NULL;
  size_t best_len = 0;
  for (size_t k = 0; k < n; k++) {
    if (!secrets[k].value || secrets[k].value[0] != text[i] || !redactable(&secrets[k]))
      continue;
    size_t sl = strlen(secrets[k].value);
    if (sl > best_len && sl <= len - i && memcmp(text + i, secrets[k].value, sl) == 0) {
      best = &secrets[k];
      best_len = sl;
    }
  }
  return best;
}

/*
 * Two passes, measuring then writing, so the output is exactly as large
 * as it must be whatever the masks' lengths are. The cut is made on the
 * input (stop), never on the output: cutting after replacing would let
 * text from beyond the cut — a secret's beginning among it — move in
 * when masks are shorter than their secrets.
 */
char *mcpr__http_redact(const char *text, size_t len, size_t stop,
                        const mcpr__http_secret *secrets, size_t n_secrets, size_t *out_len) {
  if (stop > len)
    stop = len;
  char *out = NULL;
  size_t total = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t o = 0;
    for (size_t i = 0; i < stop;) {
      const mcpr__http_secret *s = secret_at(text, len, i, secrets, n_secrets);
      if (!s) {
        if (out)
          out[o] = text[i];
        o++;
        i++;
        continue;
      }
      const char *shown = s->shown_as ? s->shown_as : DEFAULT_SHOWN_AS;
      size_t sl = strlen(shown);
      if (out)
        memcpy(out + o, shown, sl);
      o += sl;
      i += strlen(s->value);
    }
    if (!out) {
      total = o;
      out = malloc(total + 1);
      if (!out)
        return NULL;
    }
  }
  out[total] = '\0';
  if (out_len)
    *out_len = total;
  return out;
}

size_t mcpr__http_utf8_cut(const char *s, size_t len, size_t max) {
  if (len <= max)
    return len;
  size_t n = max;
  while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
    n--; /* s[n] continues a sequence: cut before the sequence starts */
  return n;
}

void mcpr__http_secret_free(char *secret) {
  if (!secret)
    return;
  volatile char *v = secret;
  while (*v)
    *v++ = 0;
  free(secret);
}
