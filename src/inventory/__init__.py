"""inventory: an event-sourced, CQRS inventory service for retailers with many stores."""

__version__ = "0.1.0"
