-- wrk script for bench/pinning.sh, cold cache: every request posts another AdmissionReview (each
-- with tags no request used before), from a file of bodies, one a line; thread i of n takes
-- every n-th line from the i-th, and stops when its share is used up. An answer counts as right
-- when it is HTTP 200 and a pinning mutation ("allowed":true and a patch). done()
-- (bench/wrk-common.lua) prints the same JSON line as for bench/server.lua.
--
--   wrk -t N -c N -s bench/pinning-cold.lua URL -- BODIES_FILE N
--
-- Run it with one connection per thread (-t N -c N): the body to send is chosen by the number of
-- answers so far, which only works with one request in flight per thread.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-common.lua")

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
  start_clock()
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
  local right = status == 200 and body:find('"allowed":true', 1, true) ~= nil
    and body:find('"patch":"', 1, true) ~= nil
  count_answer(right, #bodies)
end
