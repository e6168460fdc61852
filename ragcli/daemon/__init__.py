"""The warm daemon of a data directory: the same warm pipeline as `serve`, on a Unix socket
inside the data directory, found (and started) by `ragcli ask` by itself.

location (where its socket and state live; who may use them), argv (the `ask` command line
read without Typer), client (speaking to it), spawn (starting it, detached), fastpath (the
entry point's forwarding of `ask`): standard library only, so a forwarded `ask` imports
nothing heavy. pool, routes, server, main: the daemon process itself.
"""
