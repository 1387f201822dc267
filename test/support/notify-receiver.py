"""A stand-in for systemd's notify socket in tests.

Binds an AF_UNIX datagram socket (Node cannot), receives each sd_notify
message with its ancillary data, closes any file descriptors passed with it
(systemd does the same once it has processed a message: that is how
systemd-notify's BARRIER=1 learns the message was handled), and appends the
message and a separator line to an output file.

usage: python3 notify-receiver.py SOCKET_PATH OUTPUT_FILE
"""
import array
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
fd_size = array.array("i").itemsize
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(16 * fd_size))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fd_size)])
            for fd in fds:
                os.close(fd)
    with open(out, "ab") as f:
        f.write(data.rstrip(b"\n") + b"\n@@\n")
