/* swap: open DIR/secret while another thread swaps DIR for a symlink.
 *
 *   swap DIR HOSTPATH COUNT
 *
 * DIR is a directory in the container holding a file "secret". One thread
 * keeps renaming DIR aside and putting a symlink to HOSTPATH in its place,
 * then moving the directory back. The main thread opens DIR/secret COUNT
 * times and counts what it read: "inside" (the directory), "mirror" (the
 * symlink resolved inside the container's root) or anything else, which
 * would be the host's file.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir, *host;
static char aside[4096];
static volatile int stop;

static void *swapper(void *arg) {
    (void)arg;
    while (!stop) {
        if (rename(dir, aside) == 0) {
            symlink(host, dir);
            unlink(dir);
            rename(aside, dir);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: swap DIR HOSTPATH COUNT\n");
        return 2;
    }
    dir = argv[1];
    host = argv[2];
    snprintf(aside, sizeof aside, "%s.aside", dir);
    int count = atoi(argv[3]);
    char path[4096];
    snprintf(path, sizeof path, "%s/secret", dir);
    pthread_t thread;
    pthread_create(&thread, NULL, swapper, NULL);
    int inside = 0, mirror = 0, other = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            failed++;
            continue;
        }
        char buf[64] = {0};
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0 && strncmp(buf, "inside", 6) == 0)
            inside++;
        else if (n > 0 && strncmp(buf, "mirror", 6) == 0)
            mirror++;
        else
            other++;
    }
    stop = 1;
    pthread_join(thread, NULL);
    printf("inside %d\nmirror %d\nother %d\nfailed %d\n", inside, mirror, other,
           failed);
    return 0;
}
