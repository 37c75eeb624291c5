fun main() {
    var spins = 0L
    while (true) {
        spins++
    }
}
