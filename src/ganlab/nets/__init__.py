"""Network architectures, built from config through `ganlab.nets.registry`."""
