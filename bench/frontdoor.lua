-- wrk script of bench/frontdoor.py: GET /api/v1/products/<random id>; one JSON line of results.
--
-- Arguments (after `--` on wrk's command line): lowest and highest product id. Ids are drawn
-- uniformly, so every worker's cache holds every product after the warm-up and the run
-- measures the HTTP path, not the database. The request carries no token: product reads
-- are public. `response` counts answers outside 2xx, which wrk itself does not count as
-- errors; `done` adds the threads up through the handles kept in `setup`.

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
   non_2xx = 0
   math.randomseed(os.time() * 1000 + seed)
end

function request()
   return wrk.format("GET", "/api/v1/products/" .. math.random(low, high))
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
