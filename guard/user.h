/*
 * The sandbox's user: the uid every build and test runs as (`--uid`, one of its own per sandbox). The guard itself
 * starts as root inside the container, with only the capabilities it needs to serve (CHOWN, DAC_OVERRIDE, FOWNER,
 * KILL, SETGID, SETUID), and each test's process drops to this uid before anything of the test runs; a change of
 * every uid from root clears all capabilities, so the test has none. With a uid of its own, the guard is out of a
 * test's reach by plain permissions, whatever kernel the container runs on: a test can neither signal it nor open
 * anything under /proc/1. (Under runc the kernel already protects PID 1 from signals and a non-dumpable process from
 * its own uid; gVisor's kernel does neither, so there a test sharing the guard's uid could stop it, or write forged
 * replies to /proc/1/fd/1.)
 */
#ifndef SCRC_GUARD_USER_H
#define SCRC_GUARD_USER_H

#include <sys/types.h>

/* The lowest uid a sandbox may run as: below are the system's and people's accounts. */
#define USER_LOWEST 1000

/* Sets the sandbox's user from its decimal text: 0, or EINVAL for anything but a uid from USER_LOWEST up. */
int user_set(const char *text);

/* The sandbox's user; (uid_t)-1 when none was set (the guard's C tests). */
uid_t user_uid(void);

/* Drops the calling process to the sandbox's user and group, with no supplementary groups and no capabilities:
 * 0 or an errno. Nothing of a test may run before it succeeds. */
int user_become(void);

/* Gives the sandbox's user what the guard made at `path` (a file or a directory put in for a build), so that it is
 * the user's as if the build had made it: 0 or an errno. Nothing to do when no user was set. */
int user_own(const char *path);

/* Whether the sandbox's user may make and remove entries in the directory `path`. */
int user_can_write(const char *path);

#endif
