"""AutoInit core: the graph walk, the probe, weight application, config and legacy loading."""
