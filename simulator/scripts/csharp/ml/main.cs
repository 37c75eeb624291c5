using System.Collections.Generic;

class Program
{
    static void Main()
    {
        var blocks = new List<long[]>();
        while (true)
        {
            blocks.Add(new long[1 << 20]);
        }
    }
}
