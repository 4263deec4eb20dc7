/* Reads a heap int the program never wrote (line 10). */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int *counts = malloc(8 * sizeof(int));
    for (int i = 0; i < 8; i++)
        if (i != 5)
            counts[i] = i;
    int total = counts[3] + counts[5];
    printf("%d\n", total > 0);
    free(counts);
    return 0;
}
