"""`ragcli eval`: retrieval quality and latency on a relevance set, per configuration.

run.py is the whole command; runner.py measures each configuration of the sweep (sweeps.py)
through the pipeline; judging.py maps the set's judged ids to the index's documents and
chunks; corpus.py stages a BEIR corpus for `--ingest`; ef_search.py sets and restores
ef_search during a sweep; scoring.py scores a TREC run file; minimums.py is the `--min` gate;
relevance.py reads the set formats; metrics.py ranks; render.py and svg.py draw the report."""
