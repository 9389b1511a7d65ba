"""The server: ServerHandler, serve(), the per-connection workers and the acceptor."""
