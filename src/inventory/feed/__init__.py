"""The live feed: messages published after projection, and their fan-out to WebSockets."""
