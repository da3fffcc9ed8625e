-- Wrong-password logins for bench/login_flood.sh, each connection from one of
-- $BENCH_FLOOD_NETWORKS client networks (X-Forwarded-For, through the server's trusted proxy).
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
local networks = tonumber(os.getenv("BENCH_FLOOD_NETWORKS") or "16")
local connection = 0
wrk.method = "POST"
wrk.path = "/_matrix/client/v3/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"owner"},"password":"wrong-password"}'

function init(args)
   connection = (tid or 0)
end

function request()
   connection = connection + 1
   local headers = { ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = string.format("10.%d.0.1", connection % networks) }
   return wrk.format("POST", wrk.path, headers, wrk.body)
end
