"""The core layer: ideas every stage shares (atomic files, RLE, grounded marks, tasks, schemas, errors, the LLM
client), each defined once. It sits below the five stages and imports none of them (tests/test_layering.py)."""
