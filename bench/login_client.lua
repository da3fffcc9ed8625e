-- A well-behaved client for bench/login_flood.sh: logs in as owner with the right password from
-- its own network, and after a 429 waits the retry_after_ms the server asked for.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
wrk.method = "POST"
wrk.path = "/_matrix/client/v3/login"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forwarded-For"] = "192.0.2.10"
wrk.body = '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"owner"},"password":"password123"}'
local wait_ms = 0
local common_response = response

function response(status, headers, body)
   common_response(status, headers, body)
   wait_ms = 0
   if status == 429 then
      wait_ms = tonumber((body or ""):match('"retry_after_ms":(%d+)')) or 1000
   end
end

function delay()
   return wait_ms
end
