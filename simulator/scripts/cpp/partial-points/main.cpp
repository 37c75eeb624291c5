// Sorts n numbers, but only by one bubble-sort pass: right for some inputs, partly right for others.
#include <iostream>
#include <vector>
int main() {
    int n;
    std::cin >> n;
    std::vector<long long> v(n);
    for (auto& x : v) std::cin >> x;
    for (int i = 0; i + 1 < n; ++i)
        if (v[i] > v[i + 1]) std::swap(v[i], v[i + 1]);
    for (int i = 0; i < n; ++i) std::cout << v[i] << (i + 1 < n ? ' ' : '\n');
}
