/*
 * plot.c -- loss.png: the train and validation loss against step, the
 * growths marked, drawn by gnuplot from log.csv.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "train.h"

extern char **environ;

/* Appends s to a gnuplot script as a single-quoted string ('' is a quote). */
static void gp_quote(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);
    if (len + 1 < size)
        buf[len++] = '\'';
    for (; *s && len + 3 < size; s++) {
        if (*s == '\'')
            buf[len++] = '\'';
        buf[len++] = *s;
    }
    if (len + 1 < size)
        buf[len++] = '\'';
    buf[len < size ? len : size - 1] = '\0';
}

static void gp_add(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    if (len < size)
        vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

/* Runs `gnuplot -e script` with its stdout discarded.  0 if it exited with
 * status 0; else -1 and the reason in why: its last line on stderr (which
 * is kept from the terminal: a font cache warning at every validation
 * would bury the progress), or ENOENT's "not installed". */
static int run_gnuplot(char *script, char *why, size_t size)
{
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(why, size, "pipe: %s", strerror(errno));
        return -1;
    }
    char *argv[] = {"gnuplot", "-e", script, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int err = posix_spawn_file_actions_init(&fa);
    if (!err)
        err = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    if (!err)
        err = posix_spawn_file_actions_adddup2(&fa, fd[1], STDERR_FILENO);
    if (!err)
        err = posix_spawn_file_actions_addclose(&fa, fd[0]);
    if (!err)
        err = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    char tail[256] = ""; /* the last bytes gnuplot wrote to stderr */
    size_t kept = 0;
    for (ssize_t got; !err;) {
        char buf[256];
        if ((got = read(fd[0], buf, sizeof buf)) == 0 || (got < 0 && errno != EINTR))
            break;
        for (ssize_t i = 0; i < got; i++) {
            if (kept == sizeof tail - 1) {
                memmove(tail, tail + 1, kept - 1);
                kept--;
            }
            tail[kept++] = buf[i];
        }
    }
    tail[kept] = '\0';
    close(fd[0]);
    int status = 0;
    while (!err && waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            err = errno;
    if (err == ENOENT) {
        snprintf(why, size, "gnuplot is not installed (Debian: gnuplot-nox)");
        return -1;
    }
    if (err) {
        snprintf(why, size, "cannot run gnuplot: %s", strerror(err));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    while (kept > 0 && (tail[kept - 1] == '\n' || tail[kept - 1] == ' '))
        tail[--kept] = '\0';
    const char *line = strrchr(tail, '\n') ? strrchr(tail, '\n') + 1 : tail;
    line += strspn(line, " ");
    snprintf(why, size, "gnuplot failed (%s %d)%s%s", WIFEXITED(status) ? "exit status" : "signal",
             WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), *line ? ": " : "", line);
    return -1;
}

/* Draws loss.png from log.csv: the training loss of every step, the
 * validation loss where measured, a dashed line at each growth so far.
 * gnuplot writes a temporary file that is then renamed over loss.png, so a
 * viewer never sees half a picture.  Never fatal: a failure (no gnuplot,
 * say) warns once and stops the plotting for this run. */
void plot_losses(run *r)
{
    if (!r->plot_ok || r->step == 0 || r->plotted_step == r->step || flush_logs(r))
        return;
    char script[16384] = "";
    gp_add(script, sizeof script,
           "set terminal pngcairo size 960,540 noenhanced font ',10'; set output ");
    gp_quote(script, sizeof script, r->png_tmp);
    gp_add(script, sizeof script,
           "; set datafile separator ','; set grid; set key top right; set xlabel 'step'; "
           "set ylabel 'loss (nats/token)'; set xrange [0:%lld]; set title ",
           (long long)r->t->train_iters);
    char title[4200];
    snprintf(title, sizeof title, "%s: step %lld of %lld", r->dir, (long long)r->step,
             (long long)r->t->train_iters);
    gp_quote(script, sizeof script, title);
    for (int k = 0; k < r->applied; k++)
        gp_add(script, sizeof script,
               "; set arrow %d from %lld, graph 0 to %lld, graph 1 nohead dt 2 lc rgb 'gray40'"
               "; set label %d 'growth %d' at %lld, graph 0.97 offset 0.5, 0",
               k + 1, (long long)r->t->stages[k].step, (long long)r->t->stages[k].step, k + 1,
               k + 1, (long long)r->t->stages[k].step);
    gp_add(script, sizeof script, "; plot ");
    gp_quote(script, sizeof script, r->csv_path);
    gp_add(script, sizeof script, " using 1:2 every ::1 with lines lc rgb '#1f77b4' title 'train'");
    if (r->val_logged)
        gp_add(script, sizeof script, ", '' using 1:5 every ::1 with linespoints pt 7 ps 0.6 "
                                      "lw 2 lc rgb '#d62728' title 'validation'");
    char why[512];
    if (run_gnuplot(script, why, sizeof why) == 0) {
        if (rename(r->png_tmp, r->png_path) == 0) {
            r->plotted_step = r->step;
            return;
        }
        snprintf(why, sizeof why, "%s", strerror(errno));
    }
    warn("no %s: %s", r->png_path, why);
    unlink(r->png_tmp);
    r->plot_ok = 0;
}
