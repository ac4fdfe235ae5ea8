"""The HTTP layer: routers, wire schemas, dependencies, error mapping, body limit."""
