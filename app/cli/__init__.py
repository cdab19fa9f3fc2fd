"""The `hms` command-line client (entry point: app.cli.main:main)."""
