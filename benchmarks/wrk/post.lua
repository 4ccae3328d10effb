-- Form POSTs: BENCH_COOKIES and BENCH_BODIES hold one session cookie and one urlencoded
-- body (with that session's CSRF token) per line; request n uses pair n (rotated), so
-- each session acts for its own organisation. Redirects (303/302) count as success.
local cookies, bodies = {}, {}
for line in (os.getenv("BENCH_COOKIES") or ""):gmatch("[^\n]+") do
  cookies[#cookies + 1] = line
end
for line in (os.getenv("BENCH_BODIES") or ""):gmatch("[^\n]+") do
  bodies[#bodies + 1] = line
end
local counter = 0

setup = function(thread)
  thread:set("offset", math.random(0, 1000))
end

request = function()
  counter = counter + 1
  local i = ((counter + (offset or 0)) % #cookies) + 1
  return wrk.format("POST", nil, {
    ["Cookie"] = cookies[i],
    ["User-Agent"] = "consensus-bench",
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, bodies[i])
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
