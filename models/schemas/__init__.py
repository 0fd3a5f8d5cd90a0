"""Pydantic v2 wire shapes. The views validate requests and serialize responses only through these."""
