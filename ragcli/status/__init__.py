"""`ragcli status`: what a data directory holds and what is wrong with it."""
