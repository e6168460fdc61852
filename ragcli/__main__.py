"""`python -m ragcli` is the `ragcli` command."""

from ragcli.cli.app import main

main()
