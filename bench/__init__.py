"""Benchmarks: Assay against the latency-bound limit and a hand-written asyncio script (`python -m bench`)."""
