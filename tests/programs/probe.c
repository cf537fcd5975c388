/* probe: small checks that a shell cannot make.
 *
 *   probe ids                 print "uid U euid E"
 *   probe dropexec PROG ARG   drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
 *                             from the bounding set, then exec PROG ARG
 *   probe readexe             open /proc/self/exe and print "read N" or errno
 *   probe bigxattr PATH       setxattr of 1 GiB and print the errno name
 *   probe opath DIR NAME      open DIR with O_PATH, fstat it, then open NAME
 *                             relative to it and print "dir ok" or the error
 *   probe reuse MISSING PROG  execv MISSING, which fails, then put PROG in the
 *                             same buffer, open it, print "open ok" or the
 *                             error, and execv it with the argument "reused",
 *                             as execvp does along PATH
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "ids") == 0) {
        printf("uid %d euid %d\n", getuid(), geteuid());
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "dropexec") == 0) {
        prctl(PR_CAPBSET_DROP, 1, 0, 0, 0); /* CAP_DAC_OVERRIDE */
        prctl(PR_CAPBSET_DROP, 2, 0, 0, 0); /* CAP_DAC_READ_SEARCH */
        execv(argv[2], argv + 2);
        perror("execv");
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "readexe") == 0) {
        int fd = open("/proc/self/exe", O_RDONLY);
        if (fd < 0) {
            printf("open %s\n", strerror(errno));
            return 0;
        }
        char buf[4];
        printf("read %zd\n", read(fd, buf, sizeof buf));
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "bigxattr") == 0) {
        size_t size = (size_t)1 << 30;
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (setxattr(argv[2], "user.big", p, size, 0) < 0)
            printf("%s\n", errno == E2BIG ? "E2BIG" : strerror(errno));
        else
            printf("accepted\n");
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "opath") == 0) {
        int dir = open(argv[2], O_PATH | O_DIRECTORY);
        struct stat st;
        if (dir < 0 || fstat(dir, &st) < 0) {
            printf("opath %s\n", strerror(errno));
            return 0;
        }
        int fd = openat(dir, argv[3], O_RDONLY);
        printf(fd < 0 ? "openat %s\n" : "dir ok\n", strerror(errno));
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "reuse") == 0) {
        static char path[256];
        char *args[] = {path, "reused", NULL};
        snprintf(path, sizeof path, "%s", argv[2]);
        execv(path, args);
        snprintf(path, sizeof path, "%s", argv[3]);
        int fd = open(path, O_RDONLY);
        printf(fd < 0 ? "open %s\n" : "open ok\n", strerror(errno));
        fflush(stdout);
        execv(path, args);
        printf("execv %s\n", strerror(errno));
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of probe.c\n");
    return 2;
}
