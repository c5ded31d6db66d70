-- wrk script of the system benchmark (bench/reads.py, bench/ordering.py); one JSON line of results.
--
-- The first argument (after `--` on wrk's command line) names the call, the rest are its own:
--
--   get PREFIX LOW HIGH       GET PREFIX<id>, the id drawn uniformly from LOW..HIGH, no token
--                             (a product: public; also every baseline)
--   get-auth PREFIX LOW HIGH  the same with `Authorization: Bearer $BENCH_ACCESS_TOKEN`
--                             (the owner reading their orders)
--   place LOW HIGH KEY        POST /api/v1/orders of one unit of a product drawn from LOW..HIGH,
--                             with the token and Idempotency-Key KEY-<thread>-<n>
--
-- <thread> is the wrk thread's number and <n> counts its requests, so no key repeats within a
-- run; the runner makes KEY new for every run, so none repeats across runs either (a repeated
-- key would be a replay, not an order). The token comes from the environment so it stays off
-- the command line; a call that needs it stops the script when it is missing.
--
-- `response` counts every status; `done` adds the threads' counts up through the handles kept
-- in `setup` (statuses are keys of a flat table, which wrk copies between Lua states).

local threads = {}
local next_seed = 1

function setup(thread)
   thread:set("seed", next_seed)
   next_seed = next_seed + 1
   table.insert(threads, thread)
end

local function use_token()
   local token = os.getenv("BENCH_ACCESS_TOKEN")
   if token == nil or token == "" then
      error("BENCH_ACCESS_TOKEN is not set")
   end
   wrk.headers["Authorization"] = "Bearer " .. token
end

function init(args)
   call = args[1]
   sent, statuses = 0, {}
   math.randomseed(os.time() * 1000 + seed)
   if call == "place" then
      low, high = tonumber(args[2]), tonumber(args[3])
      key_prefix = string.format("%s-%d-", args[4], seed)
      wrk.headers["Content-Type"] = "application/json"
      use_token()
   else
      prefix, low, high = args[2], tonumber(args[3]), tonumber(args[4])
      if call == "get-auth" then
         use_token()
      end
   end
end

function request()
   sent = sent + 1
   if call == "place" then
      wrk.headers["Idempotency-Key"] = key_prefix .. sent
      local body = string.format(
         '{"lines": [{"product_id": %d, "quantity": 1}]}', math.random(low, high)
      )
      return wrk.format("POST", "/api/v1/orders", nil, body)
   end
   return wrk.format("GET", prefix .. math.random(low, high))
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(totals) do
      table.insert(parts, string.format('"%d": %d', status, count))
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, '
         .. '"statuses": {%s}}\n',
      summary.requests, summary.duration,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      table.concat(parts, ", ")
   ))
end
