"""The run machinery every command shares: config, the CLI frame, the one training loop, checkpoints,
distributed processes, data, metrics and progress, precision. The model core (supernet/*.py) imports none of it."""
