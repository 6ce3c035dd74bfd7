"""Peer clients, each run by its own virtualenv's interpreter under bench/.peers/.

Every script takes `URL FRAMES SYMBOL`, counts the trades its library hands to the callback,
and prints one JSON object: count, seconds (first to last trade), cpu_s, and mock_cpu_s when
$BENCH_MOCK_PID names the mock.
"""
