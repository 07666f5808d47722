"""Prometheus metrics and structured logs shared by the ingest job, the inbox watcher, the worker and the sink."""
