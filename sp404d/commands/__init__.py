"""One module per group of ``sp404d`` commands, each with a ``register(subparsers)`` that adds
its parsers and sets ``handler`` to the function that runs it (returning the exit code)."""
