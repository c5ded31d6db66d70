-- wrk script: the calls of the orders benchmark; one JSON line of results.
--
-- The first argument (after `--` on wrk's command line) names the call, the rest are its own:
--
--   place LOW HIGH PREFIX  POST /api/v1/orders: one unit of a product drawn from LOW..HIGH,
--                          Idempotency-Key PREFIX-<thread>-<n>, new for every request
--   reserve LOW HIGH FIRST POST /api/v1/reservations: the same one-unit line for order id
--                          FIRST + <thread> * 10^9 + <n>, new for every request, with the
--                          Idempotency-Key orders sends (`order-<id>`)
--   me                     GET /api/v1/users/me
--   read PREFIX LOW HIGH   GET PREFIX<id>, the id drawn from LOW..HIGH
--
-- <thread> is the wrk thread's number and <n> counts its requests, so keys and order ids never
-- repeat within a run; the runner makes PREFIX and FIRST new for every run, so they never
-- repeat across runs either. A repeated key would be a replay, not an order.
--
-- Every call but `reserve` (an internal API that takes no token) carries
-- `Authorization: Bearer $BENCH_ACCESS_TOKEN`, from the environment so the token stays off
-- the command line; without the variable the script stops rather than measure 401s.
--
-- `response` counts every status, so `done` can say which answers were not the expected
-- one; statuses are keys of a flat table, which wrk copies between threads' Lua states.

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
   sent, statuses, non_2xx = 0, {}, 0
   math.randomseed(os.time() * 1000 + seed)
   if call == "read" then
      prefix, low, high = args[2], tonumber(args[3]), tonumber(args[4])
   elseif call ~= "me" then
      low, high = tonumber(args[2]), tonumber(args[3])
      wrk.headers["Content-Type"] = "application/json"
   end
   if call == "place" then
      key_prefix = string.format("%s-%d-", args[4], seed)
   elseif call == "reserve" then
      first_order_id = tonumber(args[4]) + seed * 1e9
   end
   if call ~= "reserve" then
      use_token()
   end
end

local function one_line(product_id)
   return string.format('[{"product_id": %d, "quantity": 1}]', product_id)
end

function request()
   sent = sent + 1
   if call == "read" then
      return wrk.format("GET", prefix .. math.random(low, high))
   elseif call == "me" then
      return wrk.format("GET", "/api/v1/users/me")
   elseif call == "place" then
      wrk.headers["Idempotency-Key"] = key_prefix .. sent
      local body = string.format('{"lines": %s}', one_line(math.random(low, high)))
      return wrk.format("POST", "/api/v1/orders", nil, body)
   end
   local order_id = string.format("%.0f", first_order_id + sent)
   wrk.headers["Idempotency-Key"] = "order-" .. order_id
   local body = string.format(
      '{"order_id": %s, "lines": %s}', order_id, one_line(math.random(low, high))
   )
   return wrk.format("POST", "/api/v1/reservations", nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status < 200 or status > 299 then
      non_2xx = non_2xx + 1
   end
end

function done(summary, latency, requests)
   local non_2xx_total, totals = 0, {}
   for _, thread in ipairs(threads) do
      non_2xx_total = non_2xx_total + thread:get("non_2xx")
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
         .. '"non_2xx": %d, "statuses": {%s}}\n',
      summary.requests, summary.duration,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      non_2xx_total, table.concat(parts, ", ")
   ))
end
