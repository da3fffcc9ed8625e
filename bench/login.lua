-- POST /_matrix/client/v3/login as the pre-registered user $BENCH_USER / $BENCH_PASSWORD.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
wrk.method = "POST"
wrk.path = "/_matrix/client/v3/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
   '{"type":"m.login.password","identifier":{"type":"m.id.user","user":"%s"},"password":"%s"}',
   assert(os.getenv("BENCH_USER"), "BENCH_USER unset"),
   assert(os.getenv("BENCH_PASSWORD"), "BENCH_PASSWORD unset"))
