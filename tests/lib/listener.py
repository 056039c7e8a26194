"""A TCP listener that accepts connections and never writes a byte: a registry that never
answers, or an SSH port as a registry client sees one. Each accepted connection adds a line to
COUNT_FILE, so a test can tell whether anything connected.

    python3 tests/lib/listener.py PORT COUNT_FILE
"""

import socket
import sys


def main() -> None:
    port, count_file = int(sys.argv[1]), sys.argv[2]
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(64)
    open(count_file, "w").close()
    held = []
    while True:
        connection, _ = server.accept()
        held.append(connection)
        with open(count_file, "a") as count:
            count.write("accepted\n")


if __name__ == "__main__":
    main()
