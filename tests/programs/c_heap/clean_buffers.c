/* Buffers of many sizes: calloc'd counters, an aligned block, a large (mmap-served) one, a
   growing array, stdin read into the heap. No heap error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    unsigned *counts = calloc(256, sizeof *counts);
    char *line = malloc(128);
    size_t n = 0;
    while (fgets(line, 128, stdin) != NULL)
        for (size_t i = 0; line[i]; i++)
            counts[(unsigned char)line[i]]++, n++;
    void *aligned = NULL;
    if (posix_memalign(&aligned, 64, 200) != 0)
        return 1;
    memset(aligned, 7, 200);
    double *big = malloc(300000 * sizeof *big);
    for (int i = 0; i < 300000; i += 1000)
        big[i] = i * 0.5;
    int *grow = NULL;
    for (int len = 1; len <= 64; len *= 2) {
        grow = realloc(grow, len * sizeof *grow);
        for (int i = len / 2; i < len; i++)
            grow[i] = i;
    }
    char *copy = aligned_alloc(16, 32);
    memcpy(copy, "aligned", 8);
    printf("%zu %u %d %.1f %s %d\n", n, counts['a'], ((char *)aligned)[199], big[299000],
           copy, grow[63]);
    free(copy);
    free(grow);
    free(big);
    free(aligned);
    free(line);
    free(counts);
    return 0;
}
