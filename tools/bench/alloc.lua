-- alloc: 5e6 two-field objects {value, next} kept alive for 1024 iterations in a ring (same algorithm as alloc.vvs)
local n, ring_size = 5000000, 1024
local ring = {}
for k = 1, ring_size do ring[k] = false end
local prev = {-1, false}
local checksum = 0
local slot = 1
for i = 0, n - 1 do
  local obj = {i, false}
  prev[2] = obj
  prev = obj
  local old = ring[slot]
  if old then checksum = checksum + old[2][1] end
  ring[slot] = obj
  slot = slot + 1
  if slot > ring_size then slot = 1 end
end
print(checksum)
