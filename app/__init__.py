"""The splatter node: FastAPI service, job store, lease engine, worker supervisor, runner."""
