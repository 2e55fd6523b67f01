-- mandel: 1000x1000, at most 50 iterations, f64 (same algorithm as mandel.vvs)
local n, iters = 1000, 50
local scale = 2.0 / n
local count = 0
for y = 0, n - 1 do
  local ci = y * scale - 1.0
  for x = 0, n - 1 do
    local cr = x * scale - 1.5
    local zr, zi = 0.0, 0.0
    local i = 0
    while i < iters do
      local zr2, zi2 = zr * zr, zi * zi
      if zr2 + zi2 > 4.0 then break end
      zi = zi * zr
      zi = zi + zi + ci
      zr = zr2 - zi2 + cr
      i = i + 1
    end
    if i == iters then count = count + 1 end
  end
end
print(count)
