class Program
{
    static void Main()
    {
        long spins = 0;
        while (true)
        {
            spins++;
        }
    }
}
