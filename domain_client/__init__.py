"""Async httpx clients for DDS, DMS and the domain server, pydantic wire models, and an
emulator of the three services for the demo and end-to-end tests."""
