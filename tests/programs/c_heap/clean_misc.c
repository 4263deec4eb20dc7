/* Everyday library calls on heap memory: qsort, sprintf, strtok on a strdup'd string,
   memcpy and memmove between blocks, struct assignment, strncpy, memcmp. No heap error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct point { double x, y; int tag; };

static int by_value(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

int main(void) {
    int *v = malloc(50 * sizeof *v);
    for (int i = 0; i < 50; i++)
        v[i] = (i * 37) % 50;
    qsort(v, 50, sizeof *v, by_value);
    char *text = malloc(64);
    sprintf(text, "%d,%d,%d", v[0], v[25], v[49]);
    char *copy = strdup(text);
    int fields = 0;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ","))
        fields++;
    struct point *p = malloc(sizeof *p), *q = malloc(sizeof *q);
    p->x = 1.5, p->y = -2.0, p->tag = 7;
    *q = *p;
    char *buf = malloc(33);
    memcpy(buf, text, strlen(text) + 1);
    memmove(buf + 1, buf, 8);
    char *name = malloc(12);
    strncpy(name, "abcdefghijkl", 11);
    name[11] = '\0';
    printf("%s %d %.1f %d %s %zu %d\n", text, fields, q->x + q->y, q->tag, name,
           strlen(buf), memcmp(text, buf + 1, 3) == 0);
    free(name);
    free(buf);
    free(q);
    free(p);
    free(copy);
    free(text);
    free(v);
    return 0;
}
