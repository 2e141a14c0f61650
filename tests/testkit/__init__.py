"""Test and benchmark helpers (not part of the product): a scripted OpenAI-compatible server,
kill points for durability tests. Importable as ``testkit`` (pytest's ``pythonpath = ["tests"]``;
benchmark scripts put ``tests/`` on ``sys.path``)."""
