"""refquant's pytest plugin (the ``refquant_oracle`` fixture) loads itself once refquant is installed;
from a source checkout of refquant that is only on the path, load it here."""
from importlib.metadata import entry_points

if not any(ep.name == "refquant" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["refquant.testing.plugin"]
