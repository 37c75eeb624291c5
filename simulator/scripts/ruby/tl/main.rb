spins = 0
loop do
  spins += 1
end
