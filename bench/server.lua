-- wrk script for bench/server.sh: POSTs one AdmissionReview to the URL's path, checks that every
-- answer is HTTP 200 and byte for byte the expected AdmissionReview, and stops each thread after
-- a number of answers.
--
--   wrk -s bench/server.lua URL -- BODY_FILE EXPECTED_FILE MAX_ANSWERS_PER_THREAD
--
-- done() prints one JSON line: answers, their rate over the time the threads really ran (so a
-- thread stopped by the count gives the right rate), latency percentiles, and errors.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- Per thread, read back by done() (thread:get reads globals).
answers, wrong, started_us, last_us = 0, 0, nil, nil

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = read_file(args[1])
  expected = read_file(args[2])
  limit = tonumber(args[3])
end

function request()
  if not started_us then
    started_us = now_us()
  end
  return wrk.format()
end

function response(status, headers, body)
  answers = answers + 1
  last_us = now_us()
  if status ~= 200 or body ~= expected then
    wrong = wrong + 1
  end
  if answers >= limit then
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
