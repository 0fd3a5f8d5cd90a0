"""Performance tip 2 of the async-operations guide: 20 experiments, at most 5 at a time (asyncio.Semaphore).

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python semaphore_limit.py
"""

import asyncio

from elluminate import AsyncClient


# --- Setup (not in the guide): the `template` and `collection` the snippet uses. The snippet passes no
# criteria, so the first run generates them from the template and the others share them. ---
async def setup():
    async with AsyncClient() as client:
        template = await client.create_prompt_template(name="Limited", messages="Explain {{topic}} briefly.")
        collection = await client.create_collection(name="Limited Cases")
        await collection.aadd_many(variables=[{"topic": "AI"}, {"topic": "ML"}])
        return template, collection


template, collection = asyncio.run(setup())
# --- End of setup ---


async def run_with_limit(semaphore, client, name, template, collection):
    async with semaphore:
        return await client.run_experiment(
            name=name,
            prompt_template=template,
            collection=collection,
        )


async def main():
    async with AsyncClient() as client:
        # Limit to 5 concurrent experiments
        semaphore = asyncio.Semaphore(5)

        tasks = [run_with_limit(semaphore, client, f"Exp {i}", template, collection) for i in range(20)]
        experiments = await asyncio.gather(*tasks)
        # Report (not in the guide): every experiment finished with rated responses.
        for experiment in experiments:
            assert experiment.results is not None and experiment.results.num_rated_responses == 2, experiment.name
            print(f"{experiment.name}: {experiment.results.mean_all_ratings.yes:.1%}")
        print(f"Completed {len(experiments)} experiments, at most 5 at a time")


asyncio.run(main())
