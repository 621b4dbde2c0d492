/* lockholder.c — see lockholder.h. The child tells the parent through a
 * pipe once the lock is taken; a child that cannot take it exits, so the
 * parent's read fails instead of waiting. */
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lockholder.h"
#include "testutil.h"

pid_t lh_hold_stopped(const char *db_path, lh_lock lock) {
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    if (lock == LH_COMMIT_LOCK) {
      char lock_path[4200];
      snprintf(lock_path, sizeof lock_path, "%s-mcprlock", db_path);
      int fd = open(lock_path, O_RDWR | O_CREAT, 0600);
      if (fd < 0 || flock(fd, LOCK_EX) != 0)
        _exit(1);
    } else {
      sqlite3 *db;
      if (sqlite3_open(db_path, &db) != SQLITE_OK ||
          sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
        _exit(1);
    }
    char c = 1;
    if (write(ready[1], &c, 1) != 1)
      _exit(1);
    raise(SIGSTOP);
    _exit(0);
  }
  close(ready[1]);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  return pid;
}

void lh_release(pid_t holder) {
  kill(holder, SIGKILL);
  waitpid(holder, NULL, 0);
}
