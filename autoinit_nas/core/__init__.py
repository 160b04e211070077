"""AutoInit core: graph walk, weight application, config, Gaussian moment maths."""
