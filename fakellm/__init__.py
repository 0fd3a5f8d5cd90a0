"""fakellm: a deterministic, scriptable fake OpenAI-compatible model server for Assay's tests.

Importing this package is cheap (stdlib only); the aiohttp server loads with :mod:`fakellm.server`.
"""

from .judge import reasoning, verdict
from .testing import FakeLLM

__all__ = ["FakeLLM", "reasoning", "verdict"]
