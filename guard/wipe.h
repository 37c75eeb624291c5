/*
 * Clearing the sandbox between tests: killing every process but the guard, and emptying the writable directories,
 * so that nothing of one test carries over to the next.
 */
#ifndef SCRC_GUARD_WIPE_H
#define SCRC_GUARD_WIPE_H

#include <stdint.h>

/* Kills every process in the namespace but this one, until none is left to reap. When `max_rss_kb` is not NULL it is
 * raised to the largest ru_maxrss (KiB) of the processes reaped. */
void kill_everything(int64_t *max_rss_kb);

/* Empties `root` without following links: 0 or an errno. */
int wipe_tree(const char *root);

/* 'W': kills every process but PID 1, then empties every writable directory, and replies 'C' with the first errno
 * (a request before it that failed, or the wipe) and how long it took, so that the runner starts a test's clock only
 * once the sandbox is clear: the wipe is never charged to the test after it. */
void op_wipe(char *const *writable, int writable_count);

#endif
