using System.Collections.Generic;

class Program
{
    static void Main()
    {
        var blocks = new List<long[]>();
        while (true)
        {
            // Written to, so that the program holds the memory its heap counts.
            var block = new long[1 << 20];
            for (int i = 0; i < block.Length; i += 512)
            {
                block[i] = 1;
            }
            blocks.Add(block);
        }
    }
}
