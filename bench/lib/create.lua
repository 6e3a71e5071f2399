-- wrk script: POST /v2/images until `quota` responses have arrived, then end the run.
-- usage: wrk -t1 -c C -d 3600s -s create.lua URL/v2/images -- QUOTA
-- Must run with ONE wrk thread: on reaching the quota the thread stops itself and sends
-- SIGINT to the wrk process, whose main thread then reports the true elapsed time
-- (wrk otherwise sleeps for the whole -d duration). Prints one "JSON {...}" line in done().
local ffi = require("ffi")
ffi.cdef [[
  int kill(int pid, int sig);
  int getpid(void);
]]

local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  quota = tonumber(args[1]) or 1000
  got = 0
  sent = 0
  bad = 0
  finished = false
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"name":"bench-%d","disk_format":"raw","container_format":"bare"}', sent)
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  got = got + 1
  if status ~= 201 then bad = bad + 1 end
  if got >= quota and not finished then
    finished = true
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end

function done(summary, latency, requests)
  local got_total, bad_total = 0, 0
  for _, t in ipairs(threads) do
    got_total = got_total + (t:get("got") or 0)
    bad_total = bad_total + (t:get("bad") or 0)
  end
  local secs = summary.duration / 1e6
  io.write(string.format(
    'JSON {"requests":%d,"counted":%d,"non201":%d,"socket_errors":%d,"seconds":%.3f,"rps":%.1f,' ..
    '"lat_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, got_total, bad_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    secs, got_total / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
