-- POST /_matrix/client/v3/register with a unique username per request:
-- <$BENCH_PREFIX>t<thread id>n<counter>, where run.sh gives every wrk run its own prefix.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
local prefix = assert(os.getenv("BENCH_PREFIX"), "BENCH_PREFIX unset")
local counter = 0
local body_fmt = '{"username":"%st%sn%d","password":"password123","auth":{"type":"m.login.dummy"}}'
local headers = { ["Content-Type"] = "application/json" }

function request()
   counter = counter + 1
   return wrk.format("POST", "/_matrix/client/v3/register", headers,
                     string.format(body_fmt, prefix, tostring(tid), counter))
end
