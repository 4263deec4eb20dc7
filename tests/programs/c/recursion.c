/* Deep recursion: a big stack of frames (about 1 MiB) grown and unwound. */
#include <stdio.h>

static long depth(long n, volatile char *prev) {
    volatile char pad[64];
    pad[0] = (char)n;
    if (n == 0)
        return prev[0];
    return depth(n - 1, pad) + pad[0];
}

int main(void) {
    char start = 1;
    printf("%ld\n", depth(10000, &start));
    return 0;
}
