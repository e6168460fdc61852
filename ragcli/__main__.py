"""`python -m ragcli` is the `ragcli` command."""

from ragcli.cli import main

main()
