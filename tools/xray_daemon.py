"""A stand-in for the X-Ray daemon Lambda runs beside an actively traced function: a UDP socket on
loopback that keeps the segment documents sent to it (each after a `{"format": "json", "version": 1}`
line). Used by `make demo` (to print a trace) and `make bench` (to count what was exported)."""
import json
import socket
import threading


class XrayDaemon:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        # What the functions get as AWS_XRAY_DAEMON_ADDRESS.
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.datagrams = []
        self.running = True
        self.thread = threading.Thread(target=self.listen, daemon=True)
        self.thread.start()

    def listen(self):
        while self.running:
            try:
                self.datagrams.append(self.sock.recv(65536))
            except socket.timeout:
                continue

    @property
    def received(self):
        """Datagrams received so far."""
        return len(self.datagrams)

    @property
    def documents(self):
        """The segment documents received so far, parsed; anything else is left out."""
        out = []
        for data in list(self.datagrams):
            header, _, body = data.decode(errors="replace").partition("\n")
            try:
                if json.loads(header).get("format") == "json":
                    out.append(json.loads(body))
            except json.JSONDecodeError:
                pass
        return out

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()
