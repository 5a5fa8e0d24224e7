"""Configuration: constructor checks, metric specs and the heads they build."""
