-- wrk script: POST /api/v1/tokens, each request a kind of login drawn at random.
--
-- Arguments (after `--`): lowest id, highest id, then four per kind: its name, login
-- prefix, password and the status it must get, e.g.
-- `-- 1 10000 right user bench-password 200 unknown nobody bench-password 401`.
-- Each request logs in as <prefix><random id>.
--
-- Drawing the kind per request interleaves the kinds as finely as possible, so a change in
-- the machine's other load cannot favour one of them. wrk's latency histogram would mix
-- them, so the script times each request itself: with one connection per thread (`-tN -cN`,
-- which bench/logins.py always uses) a thread's requests and responses alternate, so
-- `request` notes the monotonic clock (clock_gettime through LuaJIT's FFI) and `response`
-- files the time elapsed under that request's kind. Each thread keeps flat tables only:
-- wrk copies those between threads' Lua states, not nested ones. `done` prints every
-- latency in µs per kind, and per kind the answers with another status, as one
-- `BENCH_LOGINS {...}` line for bench/logins.py.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("bench_timespec")

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
   return tonumber(clock.tv_sec) * 1000000 + math.floor(tonumber(clock.tv_nsec) / 1000)
end

local threads = {}
local next_seed = 1

function setup(thread)
   thread:set("seed", next_seed)
   next_seed = next_seed + 1
   table.insert(threads, thread)
end

function init(args)
   low = tonumber(args[1])
   high = tonumber(args[2])
   kinds = {}
   for i = 3, #args, 4 do
      table.insert(kinds, {
         name = args[i], prefix = args[i + 1], password = args[i + 2],
         status = tonumber(args[i + 3]),
      })
   end
   sample_kinds, sample_us, unexpected = {}, {}, {}
   wrk.headers["Content-Type"] = "application/json"
   math.randomseed(os.time() * 1000 + seed)
end

function request()
   current = kinds[math.random(#kinds)]
   local body = string.format(
      '{"login": "%s%d", "password": "%s"}', current.prefix, math.random(low, high),
      current.password
   )
   local formatted = wrk.format("POST", "/api/v1/tokens", nil, body)
   started_us = now_us()
   return formatted
end

function response(status, headers, body)
   table.insert(sample_kinds, current.name)
   table.insert(sample_us, now_us() - started_us)
   if status ~= current.status then
      unexpected[current.name] = (unexpected[current.name] or 0) + 1
   end
end

local function json_object(entries)
   local parts = {}
   for name, value in pairs(entries) do
      table.insert(parts, string.format('"%s": %s', name, value))
   end
   return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
   local latencies, unexpected_total = {}, {}
   for _, thread in ipairs(threads) do
      local names, micros = thread:get("sample_kinds"), thread:get("sample_us")
      for i = 1, #micros do
         latencies[names[i]] = latencies[names[i]] or {}
         table.insert(latencies[names[i]], string.format("%d", micros[i]))
      end
      for name, count in pairs(thread:get("unexpected")) do
         unexpected_total[name] = (unexpected_total[name] or 0) + count
      end
   end
   local arrays = {}
   for name, micros in pairs(latencies) do
      arrays[name] = "[" .. table.concat(micros, ", ") .. "]"
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_LOGINS {"duration_us": %d, "errors": [%d, %d, %d, %d], "latencies_us": %s, '
         .. '"unexpected": %s}\n',
      summary.duration, errors.connect, errors.read, errors.write, errors.timeout,
      json_object(arrays), json_object(unexpected_total)
   ))
end
