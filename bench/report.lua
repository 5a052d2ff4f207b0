-- Shared by the scenario scripts: one machine-readable line at the end of a
-- wrk run, read by bench/run.sh. Latencies are in microseconds; `errors`
-- counts answers with status >= 400 plus socket errors and timeouts.
function done(summary, latency, requests)
   local e = summary.errors
   local errors = e.status + e.connect + e.read + e.write + e.timeout
   io.write(string.format(
      "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d errors=%d\n",
      summary.requests, summary.duration,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max, errors))
end
