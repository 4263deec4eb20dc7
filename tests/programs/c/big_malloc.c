/* A block above malloc's mmap threshold (128 KiB) is served by mmap and returned by munmap;
   small ones come from the brk heap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *small = malloc(100);
    char *big = malloc(200 * 1024);
    memset(big, 'x', 4096);
    big[200 * 1024 - 1] = 'y';
    strcpy(small, "small block");
    printf("%s, big[1234] = %c, last = %c\n", small, big[1234], big[200 * 1024 - 1]);
    free(big);
    free(small);
    return 0;
}
