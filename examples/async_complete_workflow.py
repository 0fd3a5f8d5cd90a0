"""Complete Example of the async-operations guide: the full async workflow, then concurrent execution.

- the async context manager manages the client's resources;
- every client method is awaited;
- rich model methods (on schema objects) use the `a` prefix: `agenerate_criteria()`, `aadd_many()`;
- results are read the same way as in synchronous code;
- three experiments on the shared template, criteria and collection run concurrently with asyncio.gather.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python async_complete_workflow.py
"""

import asyncio
import time

from elluminate import AsyncClient


async def main():
    async with AsyncClient() as client:
        # 1. Set up shared resources (template, criteria, collection)
        template = await client.create_prompt_template(
            name="Concept Explainer",
            messages="Explain {{concept}} to a beginner in three sentences.",
        )
        criteria = await template.agenerate_criteria()
        print(f"Generated {len(criteria)} criteria:")
        for criterion in criteria:
            print(f"  - {criterion.criterion_str}")

        collection = await client.create_collection(name="Concepts")
        await collection.aadd_many(
            variables=[
                {"concept": "recursion"},
                {"concept": "photosynthesis"},
                {"concept": "compound interest"},
                {"concept": "failure modes of distributed systems"},
                {"concept": "entropy"},
            ]
        )
        print(f"Collection '{collection.name}' has {len(collection.variables)} test cases")

        # 2. Run multiple experiments concurrently (the template's generated criteria are used)
        started = time.monotonic()
        experiments = await asyncio.gather(
            *[
                client.run_experiment(
                    name=f"Concurrent Run {i}",
                    prompt_template=template,
                    collection=collection,
                )
                for i in range(1, 4)
            ]
        )
        print(f"Ran {len(experiments)} experiments concurrently in {time.monotonic() - started:.1f}s")

        # 3. Compare results across all experiments (same access as synchronous code)
        for experiment in experiments:
            results = experiment.results
            assert results is not None and results.num_rated_responses == 5, f"{experiment.name}: {results}"
            print(f"{experiment.name}: {results.mean_all_ratings.yes:.1%} pass rate")
        best = max(experiments, key=lambda e: e.results.mean_all_ratings.yes)
        print(f"Best: {best.name}")


asyncio.run(main())
