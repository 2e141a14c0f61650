"""Test and benchmark helpers (not part of the product): a scripted OpenAI-compatible server,
kill points for durability tests, the builds of the modeling tests and benchmarks (``build_fixture``).
Importable as ``testkit`` (pytest's ``pythonpath = ["tests"]``; benchmark scripts through
``benchkit.testkit(NAME)``, scripts/benchkit.py)."""
