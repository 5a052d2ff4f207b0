-- POST /api/v1/token/obtain with the benchmark user's credentials.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"username":"%s","password":"%s"}',
   os.getenv("BENCH_USER"), os.getenv("BENCH_PASSWORD"))
