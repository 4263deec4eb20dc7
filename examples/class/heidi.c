/* Assignment: print the sum 1 + 2 + ... + 100, computed by a recursive function.
 * heidi: right answer, but every level of the recursion allocates a node that is never
 * freed (100 leaked blocks). */
#include <stdio.h>
#include <stdlib.h>

struct node { long value; struct node *next; };

static long sum(long n) {
    if (n == 0)
        return 0;
    struct node *here = malloc(sizeof *here);
    here->value = n;
    here->next = NULL;
    return here->value + sum(n - 1);
}

int main(void) {
    printf("%ld\n", sum(100));
    return 0;
}
