-- POST /api/v1/token/refresh with rotation on: every answer's new refresh
-- token is the next request's, so each connection follows a chain. The
-- chains start from BENCH_REFRESH_TOKENS (comma-separated: one per
-- connection, and one more, which wrk takes when it calls request() once
-- to set the thread up and never sends).
dofile((os.getenv("BENCH_DIR") or "bench") .. "/report.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local heads = {}
for token in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS") or "", "[^,]+") do
   table.insert(heads, token)
end
-- Sent only when every chain is in flight (too few tokens given): refused,
-- and counted as an error.
local spent = "not-a-token"

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
