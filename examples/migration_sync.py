"""Migration from Sync to Async (async-operations guide): the "Before (Synchronous)" code.

Run: ELLUMINATE_BASE_URL=http://127.0.0.1:8000 ELLUMINATE_API_KEY=<project key> python migration_sync.py
"""

from elluminate import Client

client = Client()

template = client.create_prompt_template(name="Sync Template", messages="Explain {{topic}} simply.")
collection = client.create_collection(name="Sync Cases")
collection.add_many(variables=[{"topic": "AI"}, {"topic": "ML"}, {"topic": "a failing test"}])

experiment = client.run_experiment(
    name="Sync Experiment",
    prompt_template=template,
    collection=collection,
)

# Report (not in the guide)
assert experiment.results is not None and experiment.results.num_rated_responses == 3, experiment.results
print(f"{experiment.name}: {experiment.results.mean_all_ratings.yes:.1%} pass rate")
