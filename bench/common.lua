-- Shared wrk helpers for bench/run.sh: per-thread ids, counting of 2xx responses, and a
-- machine-readable summary line that run.sh parses:
--   RESULT requests=N ok=N non2xx=N sockerr=N duration_s=F rps=F ok_rps=F p50_ms=F p99_ms=F
local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

ok_count = 0
bad_count = 0

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok_count = ok_count + 1
   else
      bad_count = bad_count + 1
      if bad_count <= 3 then
         io.stderr:write(string.format("wrk: HTTP %d: %s\n", status, (body or ""):sub(1, 200)))
      end
   end
end

function done(summary, latency, requests)
   local ok = 0
   for _, t in ipairs(threads) do
      ok = ok + (t:get("ok_count") or 0)
   end
   local e = summary.errors
   local sockerr = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   io.write(string.format(
      "RESULT requests=%d ok=%d non2xx=%d sockerr=%d duration_s=%.3f rps=%.1f ok_rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
      summary.requests, ok, e.status, sockerr, secs, summary.requests / secs, ok / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
