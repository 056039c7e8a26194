-- wrk script for bench/server.sh: POSTs one AdmissionReview to several policies in turn, request
-- by request (policy 1, 2, ..., n, 1, 2, ...), over one connection, so that whatever the machine
-- does at a moment falls on all of them alike. Checks that every answer is HTTP 200 and byte for
-- byte the expected AdmissionReview of its policy, times each one from request to answer, and
-- stops after WARMUP + ANSWERS answers per policy. The latencies after the warm-up go to
-- OUT_FILE, one line per answer: the policy's index (from 1), then µs. done() prints one JSON
-- line: answers, wrong answers, socket errors, and whether the count was reached.
--
--   wrk -t 1 -c 1 -s bench/interleaved.lua URL -- WARMUP ANSWERS OUT_FILE \
--     PATH_1 BODY_FILE_1 EXPECTED_FILE_1 [PATH_2 BODY_FILE_2 EXPECTED_FILE_2 ...]

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")

local requests, expected, latencies = {}, {}, {}
local warmup, wanted, out_file, turn, sent_us = 0, 0, nil, 0, 0
-- Read back by done() (thread:get reads globals).
reached = false

local own_threads, common_setup = {}, setup
function setup(thread)
  common_setup(thread)
  table.insert(own_threads, thread)
end

function init(args)
  warmup, wanted, out_file = tonumber(args[1]), tonumber(args[2]), args[3]
  local headers = { ["Content-Type"] = "application/json" }
  for i = 4, #args, 3 do
    requests[#requests + 1] = wrk.format("POST", args[i], headers, read_file(args[i + 1]))
    expected[#expected + 1] = read_file(args[i + 2])
  end
end

function request()
  start_clock()
  turn = turn % #requests + 1
  sent_us = now_us()
  return requests[turn]
end

-- Written under another name, then renamed: the file appears whole, which tells bench/server.sh
-- to stop wrk (a stopped thread does not end wrk before its duration).
local function write_latencies()
  local file = assert(io.open(out_file .. ".part", "w"))
  for _, entry in ipairs(latencies) do
    file:write(entry[1], " ", string.format("%.1f", entry[2]), "\n")
  end
  file:close()
  assert(os.rename(out_file .. ".part", out_file))
end

function response(status, headers, body)
  local latency = now_us() - sent_us
  -- One connection: the answer is to the request just sent.
  count_answer(status == 200 and body == expected[turn], math.huge)
  if answers > warmup * #requests then
    latencies[#latencies + 1] = { turn, latency }
  end
  if answers >= (warmup + wanted) * #requests and not reached then
    reached = true
    write_latencies()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local thread = own_threads[1]
  local errors = summary.errors
  io.write(string.format('{"answers":%d,"wrong_answers":%d,"socket_errors":%d,"reached":%s}\n',
    thread:get("answers"), thread:get("wrong"),
    errors.connect + errors.read + errors.write + errors.timeout, tostring(thread:get("reached"))))
end
