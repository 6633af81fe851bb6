/* kvmpager external pager example (C, one file, libc only).
 *
 * Serves guest RAM from a raw memory image (byte i of the file is guest-physical byte i; past
 * its end RAM reads as zero), speaking the kvmpager external pager protocol version 1.
 *
 *   gcc -O2 -o image_pager image_pager.c
 *   kvmpager run --pager-exec ./image_pager              # image from KVMPAGER_IMAGE
 *   kvmpager restore DIR --pager-exec ./image_pager      # serves the snapshot's DIR/ram.img
 *   ./image_pager --listen /tmp/pager.sock IMAGE &       # or: pager first, then
 *   kvmpager run --image IMAGE --pager-socket /tmp/pager.sock
 *
 * Each read request is widened to its aligned window (2 MiB, or KVMPAGER_WINDOW bytes: a power
 * of two from 4096 to the data region's size, e.g. KVMPAGER_WINDOW=4096 to serve each fault's
 * page alone); the window's bytes are pread from the image straight into the data region (the
 * memfd the hello carried, mapped here) and supplied from there.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

enum { VERSION = 1, HEADER = 8, MAX_MESSAGE = 4096 };
enum { KIND_HELLO = 1, KIND_PACKET = 2, KIND_OP = 3, KIND_REPLY = 4 };
enum { OP_SUPPLY = 0x10, PAGER_VMO_READ = 0, QUEUE = 1024 };
/* The most VMOs a hello can name (it must fit in one message). */
enum { MAX_VMOS = (MAX_MESSAGE - HEADER - 16) / 16 };

static int sock, image;
static uint8_t *region;
static uint64_t region_size, next_id = 1, window = 2ull << 20;
static uint64_t vmo_key[MAX_VMOS], vmo_size[MAX_VMOS];
static uint32_t vmo_count;
static uint8_t queue[QUEUE][48];
static unsigned queued;

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void die(const char *why) { fprintf(stderr, "image_pager: %s\n", why); exit(1); }

/* Socket bytes read ahead: one read() usually brings a whole message (or several). */
static uint8_t inbuf[65536];
static size_t in_at, in_end;
/* Set while op() waits for its REPLY. */
static int awaiting_reply;

static int read_exact(void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        if (in_at == in_end) {
            /* While a REPLY is awaited, poll first: a read() asleep on a Unix socket also
             * wakes each time the VMM consumes one of our messages (a write-space wake-up),
             * and the VMM reads our op meanwhile; poll waits for data only. Otherwise all we
             * sent was consumed before its REPLY came, and a plain read() saves a call. */
            struct pollfd pfd = { .fd = sock, .events = POLLIN };
            while (awaiting_reply && poll(&pfd, 1, -1) < 0 && errno == EINTR) {}
            ssize_t r = read(sock, inbuf, sizeof inbuf);
            if (r <= 0) return -1;
            in_at = 0, in_end = (size_t)r;
        }
        size_t k = in_end - in_at < n - got ? in_end - in_at : n - got;
        memcpy((uint8_t *)buf + got, inbuf + in_at, k);
        in_at += k, got += k;
    }
    return 0;
}

/* One message into buf (at least MAX_MESSAGE bytes); returns its kind, or -1 at the end. */
static int read_msg(uint8_t *buf, uint32_t *size) {
    if (read_exact(buf, HEADER)) return -1;
    *size = get32(buf);
    if (*size < HEADER || *size > MAX_MESSAGE) die("bad message size");
    if (read_exact(buf + HEADER, *size - HEADER)) return -1;
    return buf[4] | buf[5] << 8;
}

static void hello(void) {
    uint8_t buf[MAX_MESSAGE];
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { buf, HEADER };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl };
    ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (n <= 0 || !c || c->cmsg_type != SCM_RIGHTS) die("the hello carried no data region");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    if (n < HEADER && read_exact(buf + n, HEADER - (size_t)n)) die("short hello");
    uint32_t size = get32(buf);
    if (size < HEADER + 16 || size > MAX_MESSAGE || read_exact(buf + HEADER, size - HEADER))
        die("bad hello");
    if ((buf[4] | buf[5] << 8) != KIND_HELLO || get32(buf + 8) != VERSION)
        die("unsupported hello");
    vmo_count = get32(buf + 12);
    region_size = get64(buf + 16);
    if (vmo_count > MAX_VMOS || size != HEADER + 16 + 16 * vmo_count) die("bad hello");
    for (uint32_t i = 0; i < vmo_count; i++) {
        vmo_key[i] = get64(buf + 24 + 16 * i);
        vmo_size[i] = get64(buf + 32 + 16 * i);
    }
    region = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (region == MAP_FAILED) die("cannot map the data region");
}

/* Sends an op and waits for its status (packets arriving meanwhile are queued). */
static int32_t op(uint64_t key, uint32_t code, uint64_t offset, uint64_t length, uint64_t data) {
    uint8_t msg[56] = { 56, 0, 0, 0, KIND_OP, 0, 0, 0 };
    uint64_t id = next_id++;
    put64(msg + 8, id);
    put64(msg + 16, key);
    put64(msg + 24, code);
    put64(msg + 32, offset);
    put64(msg + 40, length);
    put64(msg + 48, data);
    if (write(sock, msg, sizeof msg) != (ssize_t)sizeof msg) exit(0);
    awaiting_reply = 1;
    for (;;) {
        uint8_t buf[MAX_MESSAGE];
        uint32_t size;
        int kind = read_msg(buf, &size);
        if (kind < 0) exit(0);
        if (kind == KIND_PACKET && size == 56 && queued < QUEUE)
            memcpy(queue[queued++], buf + HEADER, 48);
        else if (kind == KIND_REPLY && size == 24 && get64(buf + 8) == id) {
            awaiting_reply = 0;
            return (int32_t)get32(buf + 16);
        }
    }
}

static void serve_read(uint32_t vmo, uint64_t offset, uint64_t length) {
    uint64_t start = offset & ~(window - 1);
    uint64_t end = (offset + length + window - 1) & ~(window - 1);
    if (end > vmo_size[vmo]) end = vmo_size[vmo];
    for (uint64_t at = start; at < end;) {
        uint64_t n = end - at < region_size ? end - at : region_size;
        ssize_t got = pread(image, region, n, (off_t)at);
        if (got < 0) got = 0;
        memset(region + got, 0, n - (uint64_t)got);
        int32_t status = op(vmo_key[vmo], OP_SUPPLY, at, n, 0);
        if (status != 0) {
            fprintf(stderr, "image_pager: SUPPLY at %#llx failed: %d\n",
                    (unsigned long long)at, status);
            exit(1);
        }
        at += n;
    }
}

static void handle_packet(const uint8_t *p) {
    uint64_t key = get64(p);
    uint16_t command = (uint16_t)(p[16] | p[17] << 8);
    if (command != PAGER_VMO_READ) return;
    for (uint32_t i = 0; i < vmo_count; i++)
        if (vmo_key[i] == key) serve_read(i, get64(p + 24), get64(p + 32));
}

static int listen_on(const char *path) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (strlen(path) >= sizeof a.sun_path) die("socket path too long");
    strcpy(a.sun_path, path);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1)) die("cannot listen");
    int c = accept(s, NULL, NULL);
    if (c < 0) die("accept failed");
    close(s);
    return c;
}

int main(int argc, char **argv) {
    const char *listen_path = NULL, *path = getenv("KVMPAGER_IMAGE");
    int i = 1;
    if (argc > 2 && !strcmp(argv[1], "--listen")) listen_path = argv[2], i = 3;
    if (i < argc) path = argv[i];
    if (!path) die("usage: image_pager [--listen SOCKET] IMAGE (or KVMPAGER_IMAGE)");
    image = open(path, O_RDONLY | O_CLOEXEC);
    if (image < 0) die("cannot open the image");
    const char *fd = getenv("KVMPAGER_PAGER_FD");
    sock = listen_path ? listen_on(listen_path) : fd ? atoi(fd) : 0;
    hello();
    const char *w = getenv("KVMPAGER_WINDOW");
    if (w) {
        window = strtoull(w, NULL, 0);
        if (window < 4096 || window > region_size || (window & (window - 1)))
            die("KVMPAGER_WINDOW must be a power of two from 4096 to the region size");
    }
    for (;;) {
        if (queued) {
            uint8_t p[48];
            memcpy(p, queue[0], 48);
            memmove(queue[0], queue[1], (size_t)--queued * 48);
            handle_packet(p);
            continue;
        }
        uint8_t buf[MAX_MESSAGE];
        uint32_t size;
        int kind = read_msg(buf, &size);
        if (kind < 0) return 0;
        if (kind == KIND_PACKET && size == 56) handle_packet(buf + HEADER);
    }
}
