/* Adds two numbers, but in an int: right for the small subtask, wrong once the sum needs more than 31 bits. */
#include <stdio.h>
int main(void) {
    int a, b;
    if (scanf("%d %d", &a, &b) != 2) return 1;
    printf("%d\n", a + b);
    return 0;
}
