"""The sans-IO core: bytes in, events and bytes out. No socket, thread, clock or logging."""
