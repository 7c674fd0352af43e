"""Client-facing wire formats other than chat completions, translated to and from the chat format; pure: no I/O."""
