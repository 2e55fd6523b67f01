-- loop: s += i for i < 1e8 (same algorithm as loop.vvs)
local s, i, n = 0, 0, 100000000
while i < n do
  s = s + i
  i = i + 1
end
print(s)
