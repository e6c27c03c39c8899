"""pytest configuration for the exercises (not collected by the root ``pytest`` run, whose
``testpaths`` is ``tests``). Loading this file puts the repository root on ``sys.path``, so the
exercise tests can ``from exercises._loader import load_exercise``."""
