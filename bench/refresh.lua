-- POST /api/v1/token/refresh with one refresh token (rotation off).
dofile((os.getenv("BENCH_DIR") or "bench") .. "/report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"refresh":"%s"}', os.getenv("BENCH_REFRESH"))
