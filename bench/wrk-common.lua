-- What the wrk scripts of bench/ share: reading a file, a monotonic clock, the threads (each with its index),
-- the count of answers per thread, and done(), which prints one JSON line: answers, their rate
-- over the time the threads really ran (so a thread stopped by a count gives the right rate),
-- latency percentiles, and errors. Loaded with dofile by each script.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1e6 + tonumber(timespec.tv_nsec) / 1e3
end

-- A whole file's bytes (request bodies and expected answers).
function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- Per thread, read back by done() (thread:get reads globals).
answers, wrong, started_us, last_us = 0, 0, nil, nil

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- Marks the start of a thread's run; call from request().
function start_clock()
  if not started_us then
    started_us = now_us()
  end
end

-- Counts an answer, right or not, and stops the thread after `limit` answers.
function count_answer(right, limit)
  answers = answers + 1
  last_us = now_us()
  if not right then
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
