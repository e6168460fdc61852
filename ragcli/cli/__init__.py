"""The `ragcli` command: thin Typer commands over the library."""
