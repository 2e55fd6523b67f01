-- sieve: Eratosthenes up to 1e7 over a table of booleans (same algorithm as sieve.vvs)
local n = 10000000
local composite = {}
for k = 0, n do composite[k] = false end
local i = 2
while i * i <= n do
  if not composite[i] then
    for j = i * i, n, i do composite[j] = true end
  end
  i = i + 1
end
local count = 0
for k = 2, n do
  if not composite[k] then count = count + 1 end
end
print(count)
