/*
 * lazy_curl.c — the libcurl functions the HTTP layer and the cloud client
 * call, loaded on first use (core/dynlib.h): a read command never loads
 * libcurl and its TLS, Kerberos and LDAP dependencies. The prototypes are
 * curl.h's own (its type-checking macros off here), so the compiler checks
 * each stub against it. A function the code starts to call must be added
 * here (the link fails until it is).
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <stdarg.h>
#include <stddef.h>

#include "core/dynlib.h"

static mcpr__dynlib libcurl = {"libcurl.so.4", NULL, 0};

#define CU(ret, name, params, args, fallback) \
  MCPR__DYNLIB_STUB(libcurl, ret, name, params, args, fallback)
#define CU_VOID(name, params, args) MCPR__DYNLIB_VOID_STUB(libcurl, name, params, args)

CU(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)
CU(CURL *, curl_easy_init, (void), (), NULL)
CU(CURLcode, curl_easy_perform, (CURL *curl), (curl), CURLE_FAILED_INIT)
CU_VOID(curl_easy_reset, (CURL *curl), (curl))
CU_VOID(curl_easy_cleanup, (CURL *curl), (curl))
CU(const char *, curl_easy_strerror, (CURLcode code), (code), "libcurl.so.4 could not be loaded")
CU(char *, curl_easy_escape, (CURL *curl, const char *string, int length),
   (curl, string, length), NULL)
CU_VOID(curl_free, (void *p), (p))
CU(time_t, curl_getdate, (const char *p, const time_t *unused), (p, unused), -1)
CU(struct curl_slist *, curl_slist_append, (struct curl_slist *list, const char *data),
   (list, data), NULL)
CU_VOID(curl_slist_free_all, (struct curl_slist *list), (list))
CU(CURLU *, curl_url, (void), (), NULL)
CU_VOID(curl_url_cleanup, (CURLU *handle), (handle))
CU(CURLUcode, curl_url_get, (CURLU *handle, CURLUPart what, char **part, unsigned int flags),
   (handle, what, part, flags), CURLUE_OUT_OF_MEMORY)
CU(CURLUcode, curl_url_set,
   (CURLU *handle, CURLUPart what, const char *part, unsigned int flags),
   (handle, what, part, flags), CURLUE_OUT_OF_MEMORY)

/* The variadic two: one argument, whose type the option's number range
 * gives (curl.h's CURLOPTTYPE_* and CURLINFO_* bases). */
typedef CURLcode (*setopt_long)(CURL *, CURLoption, long);
typedef CURLcode (*setopt_ptr)(CURL *, CURLoption, void *);
typedef CURLcode (*setopt_fn)(CURL *, CURLoption, void (*)(void));
typedef CURLcode (*setopt_off)(CURL *, CURLoption, curl_off_t);

MCPR__DYNLIB_WEAK CURLcode curl_easy_setopt(CURL *curl, CURLoption option, ...) {
  static void *real;
  void *fn = mcpr__dynlib_cached(&libcurl, &real, "curl_easy_setopt");
  if (!fn)
    return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, option);
  CURLcode rc;
  if (option < CURLOPTTYPE_OBJECTPOINT)
    rc = ((setopt_long)fn)(curl, option, va_arg(ap, long));
  else if (option < CURLOPTTYPE_FUNCTIONPOINT)
    rc = ((setopt_ptr)fn)(curl, option, va_arg(ap, void *));
  else if (option < CURLOPTTYPE_OFF_T)
    rc = ((setopt_fn)fn)(curl, option, va_arg(ap, void (*)(void)));
  else if (option < CURLOPTTYPE_BLOB)
    rc = ((setopt_off)fn)(curl, option, va_arg(ap, curl_off_t));
  else
    rc = ((setopt_ptr)fn)(curl, option, va_arg(ap, void *));
  va_end(ap);
  return rc;
}

/* Every CURLINFO_* takes a pointer to where the answer goes. */
typedef CURLcode (*getinfo_ptr)(CURL *, CURLINFO, void *);

MCPR__DYNLIB_WEAK CURLcode curl_easy_getinfo(CURL *curl, CURLINFO info, ...) {
  static void *real;
  void *fn = mcpr__dynlib_cached(&libcurl, &real, "curl_easy_getinfo");
  if (!fn)
    return CURLE_FAILED_INIT;
  va_list ap;
  va_start(ap, info);
  CURLcode rc = ((getinfo_ptr)fn)(curl, info, va_arg(ap, void *));
  va_end(ap);
  return rc;
}
