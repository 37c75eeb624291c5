/*
 * The stream between the runner and the guard: the byte buffer every reply is built in, the little-endian integers
 * of every frame, reading a request and sending a reply, and the failure a request without a reply leaves for the
 * next reply to carry. A frame is one op byte, a little-endian u32 payload length, and the payload; the ops and
 * their payloads are listed in main.c.
 */
#ifndef SCRC_GUARD_FRAME_H
#define SCRC_GUARD_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* The op byte and the payload length. */
#define FRAME_HEADER 5
/* The largest request: a longer one means the stream is out of step, and the guard stops serving. */
#define FRAME_LIMIT (256u * 1024u * 1024u)

/* A growable byte buffer for replies. Once an allocation has failed it takes nothing more and says so. */
struct bytes {
    unsigned char *data;
    size_t length, capacity;
    int failed;
};

void bytes_add(struct bytes *b, const void *data, size_t n);
void bytes_u32(struct bytes *b, uint32_t value);
/* A u32 length and that many bytes. */
void bytes_chunk(struct bytes *b, const void *data, size_t n);

uint32_t get_u32(const unsigned char *at);
int64_t get_i64(const unsigned char *at);
void put_u32(unsigned char *at, uint32_t value);

/* 0 when all n bytes were read, -1 at end of stream or on error. */
int read_full(int fd, void *buffer, size_t n);
/* 0 when all n bytes were written, -1 on error. */
int write_full(int fd, const void *buffer, size_t n);

/* Reading the rest of a request from the runner. A stream that ends mid-frame means the runner is gone: these do not
 * return then, the guard exits, and every process of the container dies with it. */
void read_request(void *buffer, size_t n);
/* Reads and discards n bytes, so that the stream stays in step after a refused frame. */
void skip_request(size_t n);
/* The rest of a request that is a path ('K'), or a u32 and a path ('D', 'G'), into `path` (room for PATH_MAX + 1
 * bytes): 0, or EINVAL once a request that cannot be one is skipped. */
int read_path(uint32_t length, char *path);
int read_u32_and_path(uint32_t length, uint32_t *value, char *path);
/* Copies the next `rest` bytes into `fd` (or drops them when `fd` is negative); a failed write is a setup failure. */
void stream_into(int fd, uint32_t rest);

void frame_header(unsigned char header[FRAME_HEADER], char op, size_t length);
/* Sends one reply. When the runner is gone, nothing is left to serve: the guard kills everything and exits. */
void send_frame(char op, const struct bytes *payload);

/* A request without a reply ('W', 'F', 'D', 'K') that fails is remembered, the first failure only, and the next reply
 * carries it: a report says "setup_errno" and its test is not run, a gather replies with it as its errno. */
void setup_failed(int error);
int setup_pending(void);
/* The remembered failure (0: none), forgotten once taken. */
int setup_take(void);

#endif
