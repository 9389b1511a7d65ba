"""Run the Autobahn testsuite's ``wstest`` with its TCP listeners on loopback only.

This file runs under Python 2.7, the only interpreter the testsuite supports,
so it keeps to Python 2 syntax (no type hints, no f-strings).

Usage: ``python2 autobahn_wstest.py SITE_DIR WSTEST_ARGUMENTS...``

SITE_DIR is the ``pip install --target`` folder holding the testsuite; it is
added with ``site.addsitedir`` so that the namespace packages in it load.
``wstest`` binds every interface by default, so Twisted's
``reactor.listenTCP`` is wrapped to listen on 127.0.0.1 whatever it is asked.
"""

import site
import sys

LOOPBACK = "127.0.0.1"


def main():
    """Patch the reactor, then hand the remaining arguments to wstest."""
    site.addsitedir(sys.argv[1])

    # Importing wstest installs the reactor it chooses; patch that one.
    from autobahntestsuite import wstest
    from twisted.internet import reactor

    listen_tcp = reactor.listenTCP

    def listen_tcp_on_loopback(port, factory, backlog=50, interface=""):
        return listen_tcp(port, factory, backlog, LOOPBACK)

    reactor.listenTCP = listen_tcp_on_loopback
    sys.argv = ["wstest"] + sys.argv[2:]
    return wstest.run()


if __name__ == "__main__":
    sys.exit(main())
