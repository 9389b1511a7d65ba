"""One socket: transport, TLS, proxies, tracing, options, and the connection that owns a socket's reads and writes."""
