/* N malloc/free pairs (argv[1], else PAIRS: cc -DPAIRS=n, default 1,000,000) of varying
   small sizes, each block written once: the allocator tracking benchmark
   (bench/heap_bench.py) and bench/run.py's malloc-heavy C workload. */
#include <stdio.h>
#include <stdlib.h>

#ifndef PAIRS
#define PAIRS 1000000
#endif

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : PAIRS;
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
