"""Migration from Sync to Async (async-operations guide): the "After (Asynchronous)" code.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python migration_async.py
"""

import asyncio

from elluminate import AsyncClient


async def main():
    async with AsyncClient() as client:
        template = await client.create_prompt_template(name="Async Template", messages="Explain {{topic}} simply.")
        collection = await client.create_collection(name="Async Cases")
        await collection.aadd_many(
            variables=[{"topic": "AI"}, {"topic": "ML"}, {"topic": "a failing test"}]
        )  # Note: aadd_many with 'a' prefix

        experiment = await client.run_experiment(
            name="Async Experiment",
            prompt_template=template,
            collection=collection,
        )

        # Report (not in the guide)
        assert experiment.results is not None and experiment.results.num_rated_responses == 3, experiment.results
        print(f"{experiment.name}: {experiment.results.mean_all_ratings.yes:.1%} pass rate")


asyncio.run(main())
