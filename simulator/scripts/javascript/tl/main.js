let spins = 0;
for (;;) {
  spins++;
}
