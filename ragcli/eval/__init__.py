"""`ragcli eval`: relevance sets, ranking metrics, the runner and its rendering."""
