"""`ragcli profile`: timed runs, statistics, budgets, OpenTelemetry, remote, rendering.

runs.py (one timed answer, a round), stats.py (percentiles, summaries), report.py (the cold
and warm profile), ablation.py, sweep.py (concurrency and prompt size), budget.py, otel.py,
remote.py (`--server`), render.py (terminal), svg.py (waterfall picture).
"""
