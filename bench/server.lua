-- wrk script for bench/server.sh: POSTs one AdmissionReview to the URL's path, checks that every
-- answer is HTTP 200 and byte for byte the expected AdmissionReview, and stops each thread after
-- a number of answers. done() (bench/wrk-common.lua) prints one JSON line of figures.
--
--   wrk -s bench/server.lua URL -- BODY_FILE EXPECTED_FILE MAX_ANSWERS_PER_THREAD

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = read_file(args[1])
  expected = read_file(args[2])
  limit = tonumber(args[3])
end

function request()
  start_clock()
  return wrk.format()
end

function response(status, headers, body)
  count_answer(status == 200 and body == expected, limit)
end
