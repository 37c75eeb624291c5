#include <stdio.h>

int main(void) {
    long a, b;
    if (scanf("%ld %ld", &a, &b) != 2) return 1;
    volatile long *nowhere = 0;
    printf("%ld\n", a + b + *nowhere);
    return 0;
}
