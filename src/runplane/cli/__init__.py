"""The `runplane` command line: Typer commands over the client SDK (`runplane.client`)."""
