/* Reads a block after freeing it (line 12). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    char *name = malloc(32);
    strcpy(name, "a name");
    char *other = malloc(32);
    strcpy(other, "other");
    free(name);
    char first = name[0];
    printf("%s %d\n", other, first != 0);
    free(other);
    return 0;
}
