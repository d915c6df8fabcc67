"""CLI command groups: each module has ``register(subparsers)``; ``engine.cli`` assembles them."""
