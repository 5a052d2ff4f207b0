-- POST /api/v1/token/verify of one access token.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"token":"%s"}', os.getenv("BENCH_ACCESS"))
