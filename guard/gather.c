/*
 * Gathering the built program for the runner's artifact cache (see gather.h). Every byte of the reply after its
 * errno, names and metadata as well as contents, counts against the limit, so that a tree of many small entries
 * cannot make a reply larger than the runner allows: the payload is at most 4 + limit bytes. Anything but plain files
 * and directories (a link, a FIFO, a device) makes the tree uncacheable rather than being followed or opened.
 */
#define _GNU_SOURCE
#include "gather.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The tree gathered so far. `total` counts every byte of the entries sent so far, names and metadata included, so
 * that the reply never exceeds the limit by what the contents leave out. */
struct gathered {
    struct bytes out;
    uint64_t total, limit;
    int error;
};

/* Counts `n` more bytes of the reply against the limit: 0 when they fit, else the tree is too large (EFBIG). */
static int charge(struct gathered *g, uint64_t n) {
    if (n > g->limit - g->total) {
        g->error = EFBIG;
        return -1;
    }
    g->total += n;
    return 0;
}

/* An entry's kind, mode, mtime and path; for a file, the length of the contents that follow. */
static int gathered_entry(struct gathered *g, char kind, const struct stat *st, const char *relative) {
    size_t path_length = strlen(relative);
    if (charge(g, 1 + 4 + 8 + 4 + (uint64_t)path_length + (kind == 'f' ? 4 : 0)) != 0) return -1;
    bytes_add(&g->out, &kind, 1);
    bytes_u32(&g->out, (uint32_t)(st->st_mode & 07777));
    bytes_u32(&g->out, (uint32_t)((uint64_t)st->st_mtim.tv_sec & 0xffffffffu));
    bytes_u32(&g->out, (uint32_t)((uint64_t)st->st_mtim.tv_sec >> 32));
    bytes_chunk(&g->out, relative, path_length);
    return 0;
}

/* Appends a regular file's metadata and contents. */
static void gather_file(struct gathered *g, const char *path, const char *relative) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        g->error = errno ? errno : EIO;
        if (fd >= 0) close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        g->error = ENOTSUP;
        close(fd);
        return;
    }
    if (gathered_entry(g, 'f', &st, relative) != 0 || charge(g, (uint64_t)st.st_size) != 0) {
        close(fd);
        return;
    }
    /* The size was charged; a file that grows past it while being read is refused, one that shrinks refunded. */
    uint64_t charged = (uint64_t)st.st_size;
    size_t at = g->out.length;
    bytes_u32(&g->out, 0);
    uint64_t size = 0;
    char buffer[65536];
    for (;;) {
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            g->error = errno;
            break;
        }
        if (got == 0) break;
        size += (uint64_t)got;
        if (size > charged) {
            g->error = EFBIG;
            break;
        }
        bytes_add(&g->out, buffer, (size_t)got);
    }
    close(fd);
    g->total -= charged - (size < charged ? size : charged);
    if (!g->out.failed) put_u32(g->out.data + at, (uint32_t)size);
}

/* Walks the tree under `root`, parents before children, at most `depth` levels down. */
static void gather_tree(struct gathered *g, const char *root, const char *relative, int depth) {
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", root, relative);
    if (n < 0 || n >= (int)sizeof path) {
        g->error = ENAMETOOLONG;
        return;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        g->error = errno;
        return;
    }
    struct dirent *entry;
    while (!g->error && (entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char child[PATH_MAX], child_relative[PATH_MAX];
        int a = snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        int b = snprintf(child_relative, sizeof child_relative, "%s%s%s", relative, *relative ? "/" : "",
                         entry->d_name);
        if (a < 0 || a >= (int)sizeof child || b < 0 || b >= (int)sizeof child_relative) {
            g->error = ENAMETOOLONG;
            break;
        }
        struct stat st;
        if (lstat(child, &st) != 0) {
            g->error = errno;
        } else if (S_ISDIR(st.st_mode)) {
            if (depth <= 0) {
                g->error = ELOOP;
            } else if (gathered_entry(g, 'd', &st, child_relative) == 0) {
                gather_tree(g, root, child_relative, depth - 1);
            }
        } else {
            gather_file(g, child, child_relative);
        }
    }
    closedir(dir);
}

void gather(struct bytes *reply, const char *root, uint32_t limit, int pending) {
    struct gathered g = {.limit = limit, .error = pending};
    bytes_u32(&g.out, 0);
    if (!g.error) gather_tree(&g, root, "", 16);
    if (g.out.failed) {
        free(g.out.data);
        g = (struct gathered){.error = ENOMEM};
    }
    if (g.error) {
        g.out.length = 0;
        bytes_u32(&g.out, (uint32_t)g.error);
    }
    *reply = g.out;
}

void op_gather(uint32_t length) {
    uint32_t limit;
    char root[PATH_MAX + 1];
    struct bytes reply = {0};
    int refused = read_u32_and_path(length, &limit, root);
    if (refused)
        bytes_u32(&reply, (uint32_t)refused);
    else
        gather(&reply, root, limit, setup_take());
    send_frame('A', &reply);
    free(reply.data);
}
