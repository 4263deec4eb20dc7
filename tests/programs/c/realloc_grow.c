/* A buffer grown by realloc past the mmap threshold: glibc then moves it with mremap, and
   the contents move with it. Only a few bytes are touched to keep the run short. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t size = 1000;
    char *buf = malloc(size);
    for (int round = 0; round < 6; round++) {
        buf[0] = (char)('a' + round);
        buf[size - 1] = (char)('A' + round);
        buf = realloc(buf, size * 4);
        if (buf[size - 1] != (char)('A' + round))
            return 1;
        size *= 4;
    }
    printf("final size %zu, first byte %c\n", size, buf[0]);
    free(buf);
    return 0;
}
