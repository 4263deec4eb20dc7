/* madvise(MADV_DONTNEED) on private anonymous memory: the pages read back as zeros;
   other advice changes nothing the program can see. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int main(void) {
    char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    memset(p, 'x', 3 * 4096);
    int sequential = madvise(p, 3 * 4096, MADV_SEQUENTIAL);
    int dontneed = madvise(p + 4096, 4096, MADV_DONTNEED);
    int bad = madvise(p + 1, 4096, MADV_DONTNEED);
    printf("%d %d %d: %c %d %c\n", sequential, dontneed, bad, p[4095], p[4096], p[8192]);
    return munmap(p, 3 * 4096);
}
