/* error.c -- status names and error messages (per handle and per thread). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The only thread-local state: the message of this thread's last failure,
 * so that constructors that fail (no handle yet) can still explain why. */
static _Thread_local char tls_last_error[TFI_ERRMSG_MAX];

TF_API const char *tf_status_name(tf_status status)
{
    switch (status) {
    case TF_OK: return "TF_OK";
    case TF_ERR_ARGUMENT: return "TF_ERR_ARGUMENT";
    case TF_ERR_SHAPE: return "TF_ERR_SHAPE";
    case TF_ERR_NOMEM: return "TF_ERR_NOMEM";
    case TF_ERR_IO: return "TF_ERR_IO";
    case TF_ERR_FORMAT: return "TF_ERR_FORMAT";
    case TF_ERR_CONFIG: return "TF_ERR_CONFIG";
    case TF_ERR_NONFINITE: return "TF_ERR_NONFINITE";
    case TF_ERR_STATE: return "TF_ERR_STATE";
    case TF_ERR_RANGE: return "TF_ERR_RANGE";
    case TF_ERR_NOT_FOUND: return "TF_ERR_NOT_FOUND";
    }
    return "TF_ERR_UNKNOWN";
}

TF_API const char *tf_last_error(void)
{
    return tls_last_error;
}

tf_status tfi_vfail(tfi_errbuf *eb, tf_status status, const char *fmt, va_list ap)
{
    /* Format into a local buffer first: callers may pass the previous
     * message (tf_last_error() or eb->msg) as an argument to prefix it. */
    char msg[TFI_ERRMSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    memcpy(tls_last_error, msg, sizeof msg);
    if (eb)
        memcpy(eb->msg, msg, sizeof msg);
    return status;
}

tf_status tfi_fail(tfi_errbuf *eb, tf_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tfi_vfail(eb, status, fmt, ap);
    va_end(ap);
    return status;
}

void tfi_errbuf_clear(tfi_errbuf *eb)
{
    if (eb)
        eb->msg[0] = '\0';
}
