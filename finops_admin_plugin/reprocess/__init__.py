"""Admin API side of reprocess requests: request/response models, dependencies, views.

The requests themselves (rules, storage, launch) live in `finops_pipeline.reprocess`,
shared with the code location's sensor.
"""
