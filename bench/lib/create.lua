-- wrk script: POST /v2/images until each thread has received `quota` responses.
-- usage: wrk -t T -c C -d 3600s -s create.lua URL/v2/images -- QUOTA_PER_THREAD
-- Prints one JSON line (prefixed "JSON ") with the totals in done().
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1]) or 1000
  got = 0
  sent = 0
  bad = 0
end

function request()
  sent = sent + 1
  local body = string.format(
    '{"name":"bench-%d-%d","disk_format":"raw","container_format":"bare"}', tid, sent)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  got = got + 1
  if status ~= 201 then bad = bad + 1 end
  if got >= quota then wrk.thread:stop() end
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
