-- POST /api/v1/token/refresh with rotation on: every answer's new refresh
-- token is the next request's, so each connection follows a chain. The
-- chains start from BENCH_REFRESH_TOKENS (comma-separated, one per
-- connection at least).
dofile((os.getenv("BENCH_DIR") or "bench") .. "/report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local heads = {}
for token in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS") or "", "[^,]+") do
   table.insert(heads, token)
end
-- A used-up token: sent only when a chain broke, and counted as an error.
local spent = heads[1] or ""

request = function()
   local token = table.remove(heads) or spent
   return wrk.format(nil, nil, nil, string.format('{"refresh":"%s"}', token))
end

response = function(status, headers, body)
   if status == 200 then
      local token = string.match(body, '"refresh":"([^"]+)"')
      if token then
         table.insert(heads, token)
      end
   end
end
