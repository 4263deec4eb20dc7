/* N malloc/free pairs (argv[1], default 1,000,000) of varying small sizes, each block
   written once: the allocator tracking benchmark (bench/heap_bench.py). */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long sum = 0;
    for (long i = 0; i < n; i++) {
        char *p = malloc(16 + (i & 63));
        p[0] = (char)i;
        sum += p[0];
        free(p);
    }
    printf("%ld\n", sum);
    return 0;
}
