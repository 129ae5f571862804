"""Engines evaluate a protocol against extract tables and return an ``Evaluation``.

``duckdb_engine`` is the one engine today. A second (Spark) engine implements the same ``evaluate``
function over its own tables; the protocol model never changes for it.
"""
