using System;
using System.Linq;

class Program
{
    static void Main()
    {
        var v = Console.ReadLine().Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray();
        long a = v[0], b = v[1];
        Console.WriteLine(a - b);
    }
}
