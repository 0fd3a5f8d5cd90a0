"""Basic Usage of the async-operations guide: the context manager, then manual resource management.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python async_basic_usage.py
"""

import asyncio

from elluminate import AsyncClient


# --- Setup (not in the guide): the guide's snippet uses a `collection` it never creates. ---
async def setup():
    async with AsyncClient() as client:
        collection = await client.create_collection(name="Concepts")
        await collection.aadd_many(variables=[{"concept": "recursion"}, {"concept": "entropy"}])
        return collection


collection = asyncio.run(setup())
# --- End of setup ---


# Context Manager (Recommended)
async def main():
    async with AsyncClient() as client:
        # Create resources
        template = await client.create_prompt_template(
            name="My Template",
            messages="Explain {{concept}} in simple terms.",
        )

        # Run experiment
        experiment = await client.run_experiment(
            name="My Experiment",
            prompt_template=template,
            collection=collection,
        )

        print(f"Completed: {experiment.name}")
        # Check (not in the guide): the experiment has rated responses.
        assert experiment.results is not None and experiment.results.num_rated_responses == 2, experiment.results


# Run the async function
asyncio.run(main())


# Manual Resource Management
async def main():
    client = AsyncClient()
    try:
        template = await client.create_prompt_template(
            name="My Manual Template",
            messages="Summarize {{concept}} in one sentence.",
        )
        print(f"Created template: {template.name} (version {template.version})")
    finally:
        await client.close()  # Important: clean up resources


asyncio.run(main())
