"""`assay eval`: evaluations declared in a YAML file, run on an Assay cluster through its REST API."""
