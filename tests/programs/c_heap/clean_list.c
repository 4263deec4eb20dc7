/* A linked list built, walked, reversed and freed; strings duplicated and joined. No
   heap error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    int value;
    char *label;
    struct node *next;
};

int main(void) {
    struct node *head = NULL;
    char text[32];
    for (int i = 0; i < 20; i++) {
        struct node *n = malloc(sizeof *n);
        snprintf(text, sizeof text, "node %d", i);
        n->value = i * i;
        n->label = strdup(text);
        n->next = head;
        head = n;
    }
    struct node *reversed = NULL;
    while (head) {
        struct node *next = head->next;
        head->next = reversed;
        reversed = head;
        head = next;
    }
    size_t total = 0;
    char *joined = calloc(1, 1);
    for (struct node *n = reversed; n; n = n->next) {
        total += (size_t)n->value;
        joined = realloc(joined, strlen(joined) + strlen(n->label) + 2);
        strcat(joined, n->label);
        strcat(joined, ",");
    }
    printf("%zu %zu %.12s\n", total, strlen(joined), joined);
    free(joined);
    while (reversed) {
        struct node *next = reversed->next;
        free(reversed->label);
        free(reversed);
        reversed = next;
    }
    return 0;
}
