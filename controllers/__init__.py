"""Built-in controller plugins (installed as emobench.controllers, registered by entry points)."""
