"""One module per `trace` subcommand."""
