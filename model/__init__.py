"""The drill model and its loaders: what a person writes (drill and game-day files) and what is recorded, pure
pydantic and YAML, no Temporal. Installed as ``gameday.model``; every other room imports it, it imports none of them
(see docs/ARCHITECTURE.md).

``model.kinds`` holds one module per target, fault and probe kind and the registry every other part reads;
``model.verdict`` the verdict and time-to-safe rules; ``model.score`` the resilience score.
"""
