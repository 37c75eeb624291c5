#include <stdlib.h>
#include <string.h>

int main(void) {
    for (;;) {
        char *block = malloc(8 << 20);
        if (!block) return 3;
        memset(block, 1, 8 << 20);
    }
}
