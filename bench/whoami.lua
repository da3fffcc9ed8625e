-- GET /_matrix/client/v3/account/whoami with the token in $BENCH_TOKEN.
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
wrk.method = "GET"
wrk.path = "/_matrix/client/v3/account/whoami"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN unset")
