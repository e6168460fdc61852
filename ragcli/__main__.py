"""`python -m ragcli` is the `ragcli` command."""

from ragcli.cli.entry import main

main()
