/* A minimal keep-alive HTTP/1.1 load generator for bench/bench_server.py: it sends prepared requests one at a
 * time on one connection and reads each answer whole (head, then Content-Length octets). Written in C so that
 * the clients take little of a 2-core machine's CPU from the server they measure (a Python client costs tens
 * of microseconds per round trip, all on the same cores).
 *
 *   loadgen PORT FILE   FILE: the requests, each as a 4-octet big-endian length and the request's bytes
 * Prints "SECONDS NON200" (the time for all round trips, the answers whose status was not 200).
 *
 * TCP_NODELAY, and TCP_QUICKACK again after every read (Linux turns it off by itself): a server that writes an
 * answer's head and body in two writes (OMI does) would otherwise wait for this side's delayed ACK, ~40 ms a
 * round trip. A server that writes once (openmi) is unaffected.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: loadgen PORT FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror("open"); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *reqs = malloc(size);
    if (!reqs || fread(reqs, 1, size, f) != (size_t)size) { perror("read"); return 2; }
    fclose(f);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 2; }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    long bad = 0, pos = 0;
    size_t have = 0;  /* bytes in buf not yet consumed */
    double t0 = now();
    while (pos + 4 <= size) {
        unsigned long len = ((unsigned long)reqs[pos] << 24) | (reqs[pos + 1] << 16) | (reqs[pos + 2] << 8) | reqs[pos + 3];
        pos += 4;
        for (unsigned long sent = 0; sent < len;) {
            ssize_t n = send(s, reqs + pos + sent, len - sent, 0);
            if (n <= 0) { perror("send"); return 1; }
            sent += n;
        }
        pos += len;
        char *end;
        for (;;) {  /* the head */
            buf[have] = 0;
            end = strstr(buf, "\r\n\r\n");
            if (end) break;
            if (have >= sizeof buf - 1) { fprintf(stderr, "head too long\n"); return 1; }
            ssize_t n = recv(s, buf + have, sizeof buf - 1 - have, 0);
            if (n <= 0) { fprintf(stderr, "connection closed\n"); return 1; }
            setsockopt(s, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            have += n;
        }
        size_t head = end + 4 - buf;
        long length = 0;
        for (char *line = buf; line < end; line = strstr(line, "\r\n") + 2) {
            if (strncasecmp(line, "Content-Length:", 15) == 0) length = atol(line + 15);
        }
        if (strncmp(buf, "HTTP/1.1 200", 12) != 0) bad++;
        while (have < head + length) {  /* the body */
            if (head + length > sizeof buf - 1) { fprintf(stderr, "answer too long\n"); return 1; }
            ssize_t n = recv(s, buf + have, sizeof buf - 1 - have, 0);
            if (n <= 0) { fprintf(stderr, "connection closed\n"); return 1; }
            setsockopt(s, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
            have += n;
        }
        memmove(buf, buf + head + length, have - head - length);
        have -= head + length;
    }
    printf("%.6f %ld\n", now() - t0, bad);
    close(s);
    return 0;
}
