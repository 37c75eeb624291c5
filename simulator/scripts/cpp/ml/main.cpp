#include <vector>

int main() {
    std::vector<std::vector<char>> blocks;
    for (;;) blocks.emplace_back(8 << 20, 'x');
}
