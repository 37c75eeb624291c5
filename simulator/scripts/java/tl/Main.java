public class Main {
    public static void main(String[] args) {
        long spins = 0;
        while (true) {
            spins++;
        }
    }
}
