/* unixsock: a listener and a client meet at a socket path.
 *
 *   unixsock PATH
 *
 * Binds a stream socket to PATH and listens, forks a child that connects
 * to PATH and writes "hello", accepts it and prints what arrived. Exits
 * non-zero, with the failing call named, if any step fails.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what) {
    perror(what);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: unixsock PATH\n");
        return 2;
    }
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, argv[1], sizeof address.sun_path - 1);
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(server, (struct sockaddr *)&address, sizeof address) < 0)
        return fail("bind");
    if (listen(server, 1) < 0)
        return fail("listen");
    pid_t child = fork();
    if (child == 0) {
        int client = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(client, (struct sockaddr *)&address, sizeof address) < 0)
            _exit(fail("connect"));
        write(client, "hello", 5);
        _exit(0);
    }
    int peer = accept(server, NULL, NULL);
    if (peer < 0)
        return fail("accept");
    char buf[16] = {0};
    read(peer, buf, sizeof buf - 1);
    int status = 0;
    waitpid(child, &status, 0);
    printf("%s\n", buf);
    return status == 0 ? 0 : 1;
}
