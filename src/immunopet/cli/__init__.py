"""Command line: ``immunopet`` and its subcommands."""
