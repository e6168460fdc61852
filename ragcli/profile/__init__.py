"""`ragcli profile`: timed runs, statistics, budgets, OpenTelemetry, remote, rendering."""
