-- GET with the session cookies in BENCH_COOKIES (one per line; rotated) or a token in
-- BENCH_AUTH, and a JSON
-- summary with the percentiles wrk does not print by itself (p95).
local cookies = {}
for line in (os.getenv("BENCH_COOKIES") or ""):gmatch("[^\n]+") do
  cookies[#cookies + 1] = line
end
local counter = 0
-- The API pages: a personal access token (BENCH_AUTH: "Bearer cns_…") instead of cookies.
local auth = os.getenv("BENCH_AUTH")

request = function()
  counter = counter + 1
  local headers = {["User-Agent"] = "consensus-bench"}
  if #cookies > 0 then
    headers["Cookie"] = cookies[(counter % #cookies) + 1]
  end
  if auth then
    headers["Authorization"] = auth
  end
  return wrk.format("GET", nil, headers, nil)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":%d,"status_errors":%d,' ..
    '"p50":%d,"p95":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
