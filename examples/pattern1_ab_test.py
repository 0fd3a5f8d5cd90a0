"""Pattern 1 of the async-operations guide: concurrent A/B testing with asyncio.gather.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python pattern1_ab_test.py
"""

import asyncio

from elluminate import AsyncClient


async def ab_test():
    async with AsyncClient() as client:
        # Set up shared resources
        criterion_set = await client.create_criterion_set(name="Quality")
        await criterion_set.aadd_criteria(
            [
                "Is the response helpful?",
                "Is it accurate?",
            ]
        )

        collection = await client.create_collection(name="Test Cases")
        await collection.aadd_many(
            variables=[
                {"topic": "AI"},
                {"topic": "ML"},
            ]
        )

        # Create templates
        template_a = await client.create_prompt_template(
            name="Style A",
            messages="Explain {{topic}} briefly.",
        )
        template_b = await client.create_prompt_template(
            name="Style B",
            messages="Explain {{topic}} with examples.",
        )

        # Run both experiments concurrently
        exp_a, exp_b = await asyncio.gather(
            client.run_experiment(
                name="Test A",
                prompt_template=template_a,
                collection=collection,
                criterion_set=criterion_set,
            ),
            client.run_experiment(
                name="Test B",
                prompt_template=template_b,
                collection=collection,
                criterion_set=criterion_set,
            ),
        )

        # Compare results
        print(f"A: {exp_a.results.mean_all_ratings.yes:.1%}")
        print(f"B: {exp_b.results.mean_all_ratings.yes:.1%}")


asyncio.run(ab_test())
