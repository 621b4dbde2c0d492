/*
 * cli.c — see cli.h. fork/exec with three pipes; both output pipes are
 * drained with poll() while stdin is written, so a chatty child never
 * blocks on a full pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "testutil.h"

extern char **environ;

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n) {
  if (*len + n + 1 > *cap) {
    size_t ncap = *cap ? *cap : 4096;
    while (*len + n + 1 > ncap)
      ncap *= 2;
    char *b = realloc(*buf, ncap);
    assert_non_null(b);
    *buf = b;
    *cap = ncap;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  (*buf)[*len] = '\0';
}

/* Read what is available from fd; returns false at EOF. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap) {
  char tmp[8192];
  ssize_t n = read(fd, tmp, sizeof tmp);
  if (n > 0) {
    append(buf, len, cap, tmp, (size_t)n);
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  return false;
}

const char *cli_bin(void) {
  const char *bin = getenv("MCPR_BIN");
  if (!bin)
    fail_msg("MCPR_BIN is not set (run through ctest)");
  return bin;
}

static pid_t spawn(const cli_spec *spec, int *in_fd, int *out_fd, int *err_fd) {
  const char *bin = spec->bin ? spec->bin : cli_bin();
  int pin[2], pout[2], perr[2];
  assert_int_equal(pipe(pin), 0);
  assert_int_equal(pipe(pout), 0);
  assert_int_equal(pipe(perr), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]), close(perr[0]),
        close(perr[1]);
    if (spec->cwd && chdir(spec->cwd) != 0)
      _exit(127);
    for (const char *const *u = spec->unset; u && *u; u++)
      unsetenv(*u);
    for (const char *const *e = spec->env; e && *e; e++) {
      const char *eq = strchr(*e, '=');
      if (!eq)
        continue;
      char name[256];
      snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
      setenv(name, eq + 1, 1);
    }
    size_t n = 0;
    for (const char *const *a = spec->args; a && *a; a++)
      n++;
    char **argv = calloc(n + 2, sizeof *argv);
    if (!argv)
      _exit(127);
    argv[0] = (char *)bin;
    for (size_t i = 0; i < n; i++)
      argv[i + 1] = (char *)spec->args[i];
    execve(bin, argv, environ);
    _exit(127);
  }
  close(pin[0]), close(pout[1]), close(perr[1]);
  *in_fd = pin[1];
  *out_fd = pout[0];
  *err_fd = perr[0];
  return pid;
}

static int exit_code_of(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

void cli_run(const cli_spec *spec, cli_result *r) {
  memset(r, 0, sizeof *r);
  int in_fd, out_fd, err_fd;
  signal(SIGPIPE, SIG_IGN);
  pid_t pid = spawn(spec, &in_fd, &out_fd, &err_fd);
  const char *data = spec->stdin_data;
  size_t left = data ? (spec->stdin_len ? spec->stdin_len : strlen(data)) : 0;
  if (!left) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  size_t out_cap = 0, err_cap = 0;
  append(&r->out, &r->out_len, &out_cap, "", 0);
  append(&r->err, &r->err_len, &err_cap, "", 0);
  long long deadline = tu_mono_ms() + (spec->timeout_ms ? spec->timeout_ms : 30000);
  bool out_open = true, err_open = true, killed = false;
  while (out_open || err_open) {
    struct pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    fds[0].fd = out_open ? out_fd : -1;
    fds[1].fd = err_open ? err_fd : -1;
    long long wait = deadline - tu_mono_ms();
    if (wait <= 0) {
      if (!killed)
        kill(pid, SIGKILL);
      killed = true;
      wait = 1000;
      deadline = tu_mono_ms() + 5000;
    }
    int n = poll(fds, 3, (int)wait);
    if (n < 0 && errno != EINTR)
      break;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP)))
      out_open = drain(out_fd, &r->out, &r->out_len, &out_cap);
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP)))
      err_open = drain(err_fd, &r->err, &r->err_len, &err_cap);
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = write(in_fd, data, left);
      if (w > 0) {
        data += w;
        left -= (size_t)w;
      }
      if (left == 0 || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0)
    close(in_fd);
  close(out_fd);
  close(err_fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r->exit_code = exit_code_of(status);
}

void cli_runv(cli_result *out, const char *arg0, ...) {
  const char *args[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, arg0);
  for (const char *a = arg0; a && n < 63; a = va_arg(ap, const char *))
    args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  cli_spec spec = {.args = args};
  cli_run(&spec, out);
}

void cli_result_free(cli_result *r) {
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

void cli_start(const cli_spec *spec, cli_proc *p) {
  memset(p, 0, sizeof *p);
  int in_fd;
  p->pid = spawn(spec, &in_fd, &p->out_fd, &p->err_fd);
  close(in_fd);
  fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
  fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
  append(&p->out, &p->out_len, &p->out_cap, "", 0);
  append(&p->err, &p->err_len, &p->err_cap, "", 0);
}

static void pump(cli_proc *p, int wait_ms) {
  struct pollfd fds[2] = {{p->out_fd, POLLIN, 0}, {p->err_fd, POLLIN, 0}};
  if (poll(fds, 2, wait_ms) > 0) {
    if (p->out_fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP)) &&
        !drain(p->out_fd, &p->out, &p->out_len, &p->out_cap)) {
      close(p->out_fd);
      p->out_fd = -1;
    }
    if (p->err_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) &&
        !drain(p->err_fd, &p->err, &p->err_len, &p->err_cap)) {
      close(p->err_fd);
      p->err_fd = -1;
    }
  }
}

bool cli_wait_output(cli_proc *p, const char *needle, int timeout_ms) {
  long long deadline = tu_mono_ms() + timeout_ms;
  while (!strstr(p->out, needle)) {
    if (tu_mono_ms() >= deadline || (p->out_fd < 0 && p->err_fd < 0))
      return strstr(p->out, needle) != NULL;
    pump(p, 50);
  }
  return true;
}

void cli_stop(cli_proc *p, int sig, int timeout_ms, cli_result *r) {
  kill(p->pid, sig);
  long long deadline = tu_mono_ms() + timeout_ms;
  int status = 0;
  bool done = false;
  while (!done) {
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) {
      done = true;
      break;
    }
    if (tu_mono_ms() >= deadline) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      done = true;
      break;
    }
    pump(p, 20);
  }
  while (p->out_fd >= 0 || p->err_fd >= 0)
    pump(p, 100);
  r->out = p->out;
  r->out_len = p->out_len;
  r->err = p->err;
  r->err_len = p->err_len;
  r->exit_code = exit_code_of(status);
  memset(p, 0, sizeof *p);
}

size_t cli_count_substr(const char *hay, const char *needle) {
  size_t n = 0, len = strlen(needle);
  if (!len)
    return 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
    n++;
  return n;
}
