/*
 * The stream between the runner and the guard (see frame.h): requests come on the container's attached stdin and
 * replies go on its stdout, which no test process can reach.
 */
#define _GNU_SOURCE
#include "frame.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wipe.h"

static int setup_errno = 0;

void bytes_add(struct bytes *b, const void *data, size_t n) {
    if (b->failed || n == 0) return;
    if (b->length + n > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 4096;
        while (capacity < b->length + n) capacity *= 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, data, n);
    b->length += n;
}

void bytes_u32(struct bytes *b, uint32_t value) {
    unsigned char at[4];
    put_u32(at, value);
    bytes_add(b, at, 4);
}

void bytes_chunk(struct bytes *b, const void *data, size_t n) {
    bytes_u32(b, (uint32_t)n);
    bytes_add(b, data, n);
}

uint32_t get_u32(const unsigned char *at) {
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

int64_t get_i64(const unsigned char *at) {
    return (int64_t)((uint64_t)get_u32(at) | (uint64_t)get_u32(at + 4) << 32);
}

void put_u32(unsigned char *at, uint32_t value) {
    for (int i = 0; i < 4; i++) at[i] = (unsigned char)(value >> (8 * i));
}

int read_full(int fd, void *buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t got = read(fd, (char *)buffer + done, n - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        done += (size_t)got;
    }
    return 0;
}

int write_full(int fd, const void *buffer, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t put = write(fd, (const char *)buffer + done, n - done);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return -1;
        done += (size_t)put;
    }
    return 0;
}

void read_request(void *buffer, size_t n) {
    if (read_full(0, buffer, n) != 0) _exit(0);
}

void skip_request(size_t n) {
    char buffer[65536];
    while (n > 0) {
        size_t chunk = n < sizeof buffer ? n : sizeof buffer;
        read_request(buffer, chunk);
        n -= chunk;
    }
}

int read_path(uint32_t length, char *path) {
    if (length == 0 || length > PATH_MAX) {
        skip_request(length);
        return EINVAL;
    }
    read_request(path, length);
    path[length] = '\0';
    return 0;
}

int read_u32_and_path(uint32_t length, uint32_t *value, char *path) {
    unsigned char fixed[4];
    if (length < sizeof fixed) {
        skip_request(length);
        return EINVAL;
    }
    read_request(fixed, sizeof fixed);
    *value = get_u32(fixed);
    return read_path(length - (uint32_t)sizeof fixed, path);
}

/* The stream stays in step whatever happens to the file: every byte is read, written or not. */
void stream_into(int fd, uint32_t rest) {
    char buffer[65536];
    while (rest > 0) {
        size_t chunk = rest < sizeof buffer ? rest : sizeof buffer;
        read_request(buffer, chunk);
        if (fd >= 0 && write_full(fd, buffer, chunk) != 0) setup_failed(errno ? errno : EIO);
        rest -= (uint32_t)chunk;
    }
}

void frame_header(unsigned char header[FRAME_HEADER], char op, size_t length) {
    header[0] = (unsigned char)op;
    put_u32(header + 1, (uint32_t)length);
}

void send_frame(char op, const struct bytes *payload) {
    unsigned char header[FRAME_HEADER];
    frame_header(header, op, payload->length);
    if (write_full(1, header, FRAME_HEADER) != 0 || write_full(1, payload->data, payload->length) != 0) {
        kill_everything(NULL);
        _exit(0);
    }
}

void setup_failed(int error) {
    if (error && !setup_errno) setup_errno = error;
}

int setup_pending(void) {
    return setup_errno;
}

int setup_take(void) {
    int error = setup_errno;
    setup_errno = 0;
    return error;
}
