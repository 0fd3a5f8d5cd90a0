"""Pattern 3: FastAPI Integration (async-operations guide): one AsyncClient behind a POST /evaluate endpoint.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> \
    uvicorn fastapi_app:app --app-dir examples --port 8001
Call: curl -X POST 'http://127.0.0.1:8001/evaluate?prompt=Explain%20%7B%7Btopic%7D%7D%20simply.' \
    -H 'Content-Type: application/json' -d '{"topic": "recursion"}'
(`prompt` is a query parameter, `test_case` the JSON body: FastAPI's reading of the guide's signature.)
"""

import uuid
from datetime import datetime

from elluminate import AsyncClient
from fastapi import FastAPI

app = FastAPI()

# Create a single AsyncClient instance for the application
async_client = AsyncClient()


@app.on_event("startup")
async def startup():
    global async_client
    async_client = AsyncClient()


@app.on_event("shutdown")
async def shutdown():
    await async_client.close()


@app.post("/evaluate")
async def evaluate_prompt(prompt: str, test_case: dict):
    # Not in the guide, which leaves `timestamp` undefined: one per request, unique even for two
    # requests in the same microsecond (the collection and experiment names must not clash).
    timestamp = f"{datetime.now().strftime('%Y-%m-%d %H:%M:%S.%f')} {uuid.uuid4().hex[:8]}"

    # Get or create template
    template, _ = await async_client.get_or_create_prompt_template(
        name="API Template",
        messages=prompt,
    )

    # Generate criteria
    criteria, _ = await template.aget_or_generate_criteria()
    criterion_set = await async_client.get_criterion_set(name=template.name)

    # Create collection with single test case
    collection = await async_client.create_collection(name=f"Test {timestamp}")
    await collection.aadd_many(variables=[test_case])

    # Run experiment
    experiment = await async_client.run_experiment(
        name=f"Eval {timestamp}",
        prompt_template=template,
        collection=collection,
        criterion_set=criterion_set,
    )

    return {
        "experiment_id": experiment.id,
        "pass_rate": experiment.results.mean_all_ratings.yes if experiment.results else 0,
    }
