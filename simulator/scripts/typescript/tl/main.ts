let spins: number = 0;
for (;;) {
  spins++;
}
