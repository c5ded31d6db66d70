-- wrk script: GET <prefix><random id><suffix> with a bearer token; one JSON line of results.
--
-- Arguments (after `--` on wrk's command line): lowest id, highest id, path prefix and an
-- optional path suffix, e.g. `-- 1 10000 /api/v1/users/` or
-- `-- 1 10000 /bench/users/ /transactional`. Ids are drawn uniformly so every request is a
-- primary-key lookup of a row that exists, not a cached answer for one hot id.
--
-- Every request carries `Authorization: Bearer $BENCH_ACCESS_TOKEN` (from the environment,
-- so the token stays off the command line): the users service verifies it on each request,
-- the baseline ignores it. Without the variable the script stops rather than measure 401s.
--
-- wrk's own error counters only count status >= 400 as errors; `response` counts every
-- answer outside 2xx so redirects or 1xx would show as well. Each wrk thread has its own Lua
-- state, so `done` adds the per-thread counters up through the thread handles kept in `setup`.

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
   prefix = args[3]
   suffix = args[4] or ""
   non_2xx = 0
   math.randomseed(os.time() * 1000 + seed)
   local token = os.getenv("BENCH_ACCESS_TOKEN")
   if token == nil or token == "" then
      error("BENCH_ACCESS_TOKEN is not set")
   end
   wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
   return wrk.format("GET", prefix .. math.random(low, high) .. suffix)
end

function response(status, headers, body)
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
end

function done(summary, latency, requests)
   local non_2xx_total = 0
   for _, thread in ipairs(threads) do
      non_2xx_total = non_2xx_total + thread:get("non_2xx")
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
         .. '"non_2xx": %d}\n',
      summary.requests, summary.duration,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      non_2xx_total
   ))
end
