-- wrk script for bench/pinning.sh, cold cache: every request posts another AdmissionReview (each
-- with tags no request used before), from a file of bodies, one a line; thread i of n takes
-- every n-th line from the i-th, and stops when its share is used up. An answer counts as right
-- when it is HTTP 200 and a pinning mutation ("allowed":true and a patch). done() prints the same
-- JSON line as bench/server.lua.
--
--   wrk -t N -c N -s bench/pinning-cold.lua URL -- BODIES_FILE N
--
-- Run it with one connection per thread (-t N -c N): the body to send is chosen by the number of
-- answers so far, which only works with one request in flight per thread.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(1, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

answers, wrong, started_us, last_us = 0, 0, nil, nil

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  bodies = {}
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % tonumber(args[2]) == index then
      table.insert(bodies, line)
    end
    line_no = line_no + 1
  end
end

function request()
  if not started_us then
    started_us = now_us()
  end
  -- One connection per thread: the next request always follows the last answer. (wrk may call
  -- request() once more than it sends, so a count of calls here would skip a body.)
  local body = bodies[math.min(answers + 1, #bodies)]
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if answers >= #bodies then
    wrk.thread:stop()
    return
  end
  answers = answers + 1
  last_us = now_us()
  if status ~= 200 or not body:find('"allowed":true', 1, true) or not body:find('"patch":"', 1, true) then
    wrong = wrong + 1
  end
  if answers >= #bodies then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total, total_wrong, elapsed_us = 0, 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("answers")
    total_wrong = total_wrong + thread:get("wrong")
    local started, last = thread:get("started_us"), thread:get("last_us")
    if started and last and last - started > elapsed_us then
      elapsed_us = last - started
    end
  end
  local errors = summary.errors
  io.write(string.format(
    '{"answers":%d,"elapsed_us":%.0f,"rps":%.2f,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"wrong_answers":%d,"socket_errors":%d}\n',
    total, elapsed_us, elapsed_us > 0 and total * 1e6 / elapsed_us or 0,
    latency:percentile(50), latency:percentile(99), latency.max, total_wrong,
    errors.connect + errors.read + errors.write + errors.timeout))
end
