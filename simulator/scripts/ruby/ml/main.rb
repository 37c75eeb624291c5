blocks = []
loop do
  blocks << ('x' * (16 << 20))
end
