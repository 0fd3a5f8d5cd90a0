"""Error handling of the async-operations guide: ConflictError, then get; NotFoundError.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python error_handling.py
"""

import asyncio

from elluminate import AsyncClient
from elluminate.exceptions import ConflictError, NotFoundError


# --- Setup (not in the guide): the template "Existing" must exist for the ConflictError. ---
async def setup():
    async with AsyncClient() as client:
        await client.create_prompt_template(name="Existing", messages="Explain {{topic}}.")


asyncio.run(setup())
# --- End of setup ---


async def handle_errors():
    async with AsyncClient() as client:
        try:
            template = await client.create_prompt_template(name="Existing", messages="Explain {{topic}}.")
        except ConflictError:
            print("ConflictError: template 'Existing' already exists, getting it")  # (not in the guide)
            template = await client.get_prompt_template(name="Existing")
        print(f"Template: {template.name} (id {template.id}, version {template.version})")  # (not in the guide)

        try:
            experiment = await client.get_experiment(name="NonExistent")
        except NotFoundError:
            print("Experiment not found")
        else:
            raise SystemExit(f"Expected NotFoundError, got {experiment!r}")  # (not in the guide)


asyncio.run(handle_errors())
