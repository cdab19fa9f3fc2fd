"""Process set-up shared by the API, the workers and the CLI: logging, tracing, native threads."""
