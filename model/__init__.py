"""The drill model's room: pure data and rules, no Temporal, no I/O.

``model.kinds`` holds one module per target, fault and probe kind and the registry every other part reads;
``model.verdict`` the verdict and time-to-safe rules; ``model.score`` the resilience score.
"""
