"""refquant's exercises: numbered folders, one file to edit in each, tests that check it.

Run ``python -m exercises`` from the repository root to list them, ``python -m exercises 01`` to
check one. See ``exercises/README.md``.
"""
