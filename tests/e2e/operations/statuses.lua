-- wrk script for the operations tests: GET one path, count every answer by status.
--
-- The path comes from wrk's URL. `response` counts each status in a flat table per thread
-- (wrk copies flat tables between threads' Lua states), and `done` adds the threads up and
-- prints one line, `LOAD_RESULT {...}`, with the statuses, wrk's socket errors (connect,
-- read, write, timeout) and the latency percentiles, which load.py parses. A request that
-- failed at the socket never reaches `response`, so a zero-failure claim needs both the
-- statuses and the socket errors.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   statuses = {}
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
      'LOAD_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "statuses": {%s}}\n',
      summary.requests, summary.duration,
      math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
      errors.connect, errors.read, errors.write, errors.timeout, table.concat(parts, ", ")
   ))
end
