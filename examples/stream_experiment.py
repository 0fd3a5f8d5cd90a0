"""Real-time streaming of an experiment (async-operations guide): progress, logs and every terminal state.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python stream_experiment.py
"""

import asyncio
import sys

from elluminate import AsyncClient
from elluminate.streaming import TaskStatus


async def main():
    async with AsyncClient() as client:
        # --- Setup (not in the guide): the `template` and `collection` the snippet uses. ---
        template = await client.create_prompt_template(
            name="Stream Template", messages="Explain {{topic}} in simple terms."
        )
        collection = await client.create_collection(name="Stream Cases")
        await collection.aadd_many(variables=[{"topic": f"topic {i}"} for i in range(10)])
        # --- End of setup ---

        experiment = None
        async for event in client.stream_experiment(
            name="My Experiment",
            prompt_template=template,
            collection=collection,
            criteria=["Is it accurate?", "Is it helpful?"],
            polling_interval=0.5,  # Poll every 0.5 seconds
        ):
            if event.status == TaskStatus.STARTED:
                # Show live progress
                if event.progress:
                    percent = event.progress.percent_complete
                    print(f"Progress: {percent:.1f}%")
                    print(f"Generated: {event.progress.responses_generated}/{event.progress.total_responses}")
                    print(f"Rated: {event.progress.responses_rated}/{event.progress.total_responses}")

                # Show incremental logs
                if event.logs_delta:
                    print(f"Log: {event.logs_delta}")

            elif event.status == TaskStatus.SUCCESS:
                print("✅ Complete!")
                experiment = event.result  # Final experiment with responses
                break

            elif event.status == TaskStatus.FAILURE:
                print(f"❌ Failed: {event.error_msg}")
                break

            elif event.status == TaskStatus.TIMEOUT:
                print(f"⏱️ Timed out after 10 hours: {event.error_msg}")
                break

            elif event.status in {TaskStatus.REVOKED, TaskStatus.REJECTED}:
                print(f"⚠️ Operation {event.status.lower()}: {event.error_msg}")
                break

        # Check (not in the guide): exit non-zero unless the experiment finished with rated responses.
        if experiment is None:
            sys.exit("The experiment did not succeed")
        print(f"Rated responses: {len(experiment.rated_responses)}")
        print(f"Pass rate: {experiment.results.mean_all_ratings.yes:.1%}")


asyncio.run(main())
