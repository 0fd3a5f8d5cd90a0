"""Pattern 2 of the async-operations guide: batch processing several collections in parallel.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python pattern2_batch_collections.py
"""

import asyncio

from elluminate import AsyncClient


# --- Setup (not in the guide): the names the pattern fetches must exist first. ---
async def setup():
    async with AsyncClient() as client:
        await client.create_prompt_template(name="My Template", messages="Explain {{topic}} in simple terms.")
        await client.create_criterion_set(name="My Criteria", criteria=["Is the response helpful?", "Is it accurate?"])
        for i, topics in enumerate([["AI", "ML"], ["databases", "caching"], ["testing", "a failing build"]], 1):
            collection = await client.create_collection(name=f"Collection {i}")
            await collection.aadd_many(variables=[{"topic": topic} for topic in topics])


asyncio.run(setup())
# --- End of setup ---


async def batch_process():
    async with AsyncClient() as client:
        template = await client.get_prompt_template(name="My Template")
        criterion_set = await client.get_criterion_set(name="My Criteria")

        # Get multiple collections
        collections = await asyncio.gather(
            client.get_collection(name="Collection 1"),
            client.get_collection(name="Collection 2"),
            client.get_collection(name="Collection 3"),
        )

        # Run experiments on all collections concurrently
        experiments = await asyncio.gather(
            *[
                client.run_experiment(
                    name=f"Experiment {i + 1}",
                    prompt_template=template,
                    collection=coll,
                    criterion_set=criterion_set,
                )
                for i, coll in enumerate(collections)
            ]
        )

        return experiments


results = asyncio.run(batch_process())

# --- Report (not in the guide): print and check what the pattern returned. ---
for experiment in results:
    assert experiment.results is not None and experiment.results.num_rated_responses == 2, experiment.name
    print(f"{experiment.name} on {experiment.collection.name}: {experiment.results.mean_all_ratings.yes:.1%}")
