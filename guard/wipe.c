/*
 * Clearing the sandbox between tests (see wipe.h). The test's processes run as the same user as the guard, so they
 * can do anything to the writable directories that user can: leave them nested without end, take away the
 * permissions, fill them with links. The wipe copes with all of it.
 */
#define _GNU_SOURCE
#include "wipe.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"

void kill_everything(int64_t *max_rss_kb) {
    /* kill(-1, SIGKILL) is how the guard clears the sandbox. Outside a fresh PID namespace it would kill every
     * process the user can signal, so only PID 1 does it (main refuses to serve elsewhere, and the C tests link this
     * file without being PID 1). */
    if (getpid() != 1) return;
    for (int round = 0; round < 10000; round++) {
        kill(-1, SIGKILL);
        for (;;) {
            struct rusage usage;
            pid_t pid = wait4(-1, NULL, WNOHANG, &usage);
            if (pid > 0) {
                if (max_rss_kb && usage.ru_maxrss > *max_rss_kb) *max_rss_kb = usage.ru_maxrss;
                continue;
            }
            if (pid < 0 && errno == ECHILD) return;
            break;
        }
        usleep(1000);
    }
}

/* It walks with chdir, holding one descriptor at a time, so that no depth of nesting a program leaves can exhaust the
 * guard's descriptors or stack; it makes each directory writable before entering it, since the program (same user)
 * may have taken the permissions away. */
int wipe_tree(const char *root) {
    if (chdir(root) != 0) return errno;
    int depth = 0, error = 0;
    for (long steps = 0; steps < 10000000L; steps++) {
        DIR *dir = opendir(".");
        if (!dir) {
            error = errno;
            break;
        }
        char sub[NAME_MAX + 1] = "";
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            struct stat st;
            if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISDIR(st.st_mode)) {
                if (sub[0] == '\0') snprintf(sub, sizeof sub, "%s", entry->d_name);
            } else if (unlinkat(dirfd(dir), entry->d_name, 0) != 0) {
                error = errno;
            }
        }
        closedir(dir);
        if (error) break;
        if (sub[0] != '\0') {
            if (fchmodat(AT_FDCWD, sub, 0700, 0) != 0 || chdir(sub) != 0) {
                error = errno;
                break;
            }
            depth++;
            continue;
        }
        if (depth == 0) {
            if (chdir("/") != 0) error = errno;
            return error;
        }
        /* This directory is empty: go up and remove it by its inode. */
        struct stat self;
        if (stat(".", &self) != 0 || chdir("..") != 0) {
            error = errno;
            break;
        }
        depth--;
        DIR *parent = opendir(".");
        if (!parent) {
            error = errno;
            break;
        }
        int removed = 0;
        while ((entry = readdir(parent)) != NULL) {
            struct stat st;
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            if (fstatat(dirfd(parent), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_ino == self.st_ino &&
                st.st_dev == self.st_dev) {
                removed = unlinkat(dirfd(parent), entry->d_name, AT_REMOVEDIR) == 0;
                if (!removed) error = errno;
                break;
            }
        }
        closedir(parent);
        if (error) break;
        if (!removed) {
            error = ENOTEMPTY;
            break;
        }
    }
    if (chdir("/") != 0 && !error) error = errno;
    return error ? error : EAGAIN;
}

void op_wipe(char *const *writable, int writable_count) {
    kill_everything(NULL);
    for (int i = 0; i < writable_count; i++) setup_failed(wipe_tree(writable[i]));
}
