"""Streaming batch rating (async-operations guide): status events of stream_batch_rate().

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python stream_batch_rate.py
"""

import asyncio
import sys

from elluminate import AsyncClient
from elluminate.schemas import RatingMode
from elluminate.streaming import TaskStatus


async def main():
    async with AsyncClient() as client:
        # --- Setup (not in the guide): an `experiment` with responses to rate. ---
        template = await client.create_prompt_template(name="Batch Template", messages="Describe {{topic}}.")
        collection = await client.create_collection(name="Batch Cases")
        await collection.aadd_many(variables=[{"topic": t} for t in ("rivers", "mountains", "a failed launch")])
        experiment = await client.run_experiment(
            name="Batch Source",
            prompt_template=template,
            collection=collection,
            criteria=["Is it vivid?", "Is it correct?"],
        )
        # --- End of setup ---

        # Get responses to rate
        responses = list(experiment.responses())

        ratings = None
        async for event in client.stream_batch_rate(
            prompt_responses=responses,
            rating_mode=RatingMode.DETAILED,
        ):
            if event.status == TaskStatus.STARTED:
                print("Rating in progress...")
            elif event.status == TaskStatus.SUCCESS:
                ratings = event.result  # List[List[Rating]]
                print(f"Rated {len(ratings)} responses")
            elif event.is_failure:
                print(f"Failed: {event.error_msg}")
                break

        # Check (not in the guide): every response got a verdict per criterion.
        if ratings is None or len(ratings) != len(responses):
            sys.exit(f"Batch rating did not succeed: {ratings!r}")
        for response, response_ratings in zip(responses, ratings, strict=True):
            verdicts = ", ".join(f"{r.rating.value}" for r in response_ratings)
            print(f"{response.response_str[:50]!r}: {verdicts}")


asyncio.run(main())
