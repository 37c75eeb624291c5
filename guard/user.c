/*
 * The sandbox's user (see user.h).
 */
#define _GNU_SOURCE
#include "user.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static uid_t sandbox_uid = (uid_t)-1;

int user_set(const char *text) {
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < USER_LOWEST || value >= (unsigned long)INT_MAX) {
        return EINVAL;
    }
    sandbox_uid = (uid_t)value;
    return 0;
}

uid_t user_uid(void) {
    return sandbox_uid;
}

int user_become(void) {
    if (sandbox_uid == (uid_t)-1) return EINVAL;
    gid_t gid = (gid_t)sandbox_uid;
    if (setgroups(0, NULL) != 0) return errno;
    if (setresgid(gid, gid, gid) != 0) return errno;
    if (setresuid(sandbox_uid, sandbox_uid, sandbox_uid) != 0) return errno;
    /* A change of every uid from root clears the capabilities; make sure none is left to the test. */
    if (geteuid() == 0 || getegid() == 0) return EPERM;
    return 0;
}

int user_own(const char *path) {
    if (sandbox_uid == (uid_t)-1) return 0;
    return lchown(path, sandbox_uid, (gid_t)sandbox_uid) == 0 ? 0 : errno;
}

int user_can_write(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    if (sandbox_uid == (uid_t)-1) return access(path, W_OK | X_OK) == 0;
    if (st.st_uid == sandbox_uid) return (st.st_mode & S_IWUSR) && (st.st_mode & S_IXUSR);
    if (st.st_gid == (gid_t)sandbox_uid) return (st.st_mode & S_IWGRP) && (st.st_mode & S_IXGRP);
    return (st.st_mode & S_IWOTH) && (st.st_mode & S_IXOTH);
}
