"""The development stack: `hms up` (the launcher) and the embedded PostgreSQL and Valkey servers
it and the test suite run from pip-installed binaries, with their dev credentials."""
