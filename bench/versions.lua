-- GET /_matrix/client/versions
package.path = os.getenv("BENCH_DIR") .. "/?.lua;" .. package.path
require("common")
wrk.method = "GET"
wrk.path = "/_matrix/client/versions"
