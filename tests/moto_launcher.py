"""Starts a moto server on a free loopback port, prints the port, and stops when stdin closes.

The test harness keeps this process's stdin open for as long as the test binary runs; when the
binary exits (normally, by panic or by signal) the pipe closes and this server shuts down, so no
emulator outlives its tests.
"""
import sys

from moto.server import ThreadedMotoServer


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
