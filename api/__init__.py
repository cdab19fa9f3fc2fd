"""FastAPI adapters: routes, request/response schemas, dependencies."""
