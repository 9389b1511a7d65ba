"""What runs a client connection: the Handler behaviour, the worker thread, keepalive, opening, the blocking client."""
