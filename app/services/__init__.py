"""The use cases, shared by the API and the workers. One function per use case."""
