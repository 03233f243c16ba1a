/*
 * util.c -- the trainer's small helpers shared by its files: messages on
 * stderr, paths in a directory, the clock, counts for people.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "train.h"

double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int die(const char *what, const char *msg)
{
    fprintf(stderr, "train: %s: %s\n", what, msg);
    return 1;
}

void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("train: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int join(char *buf, size_t size, const char *dir, const char *name)
{
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) < size)
        return 0;
    fprintf(stderr, "train: %s/%s: path too long\n", dir, name);
    return -1;
}

int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

void fmt_count(int64_t n, char *buf, size_t size)
{
    if (n < 10000)
        snprintf(buf, size, "%lld", (long long)n);
    else if (n < 1000000)
        snprintf(buf, size, "%.1fK", (double)n / 1e3);
    else if (n < 1000000000)
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
    else
        snprintf(buf, size, "%.2fG", (double)n / 1e9);
}
