#!/usr/bin/env python3
"""Traffic generators for the demo and the soak (scripts/lib/demo-env.sh), run inside a VM's network
namespace with `ip netns exec NS python3 scripts/lib/traffic.py MODE ...`. Standard library only.

  serve  --ip IP [--sink-port P] [--rr-port P] [--udp-port P]
         TCP sink (reads until EOF), TCP request/response (reads a request line, answers
         --reply-bytes bytes, closes) and a UDP sink, each on IP.
  bulk   --to IP:PORT --bytes N [--every S] [--rate-mbit R]
         connect, send N bytes, close; again every S seconds. --bytes 0: one endless stream
         (reconnects when it breaks). --rate-mbit: TCP paces the socket itself (SO_MAX_PACING_RATE),
         so the sender never fills the namespace's tbf queue (where other packets would wait).
  short  --to IP:PORT --rate R                 R short connections per second (request, reply, close).
  udp    --to IP:PORT --pps N [--size B]       N datagrams of B bytes per second.

Every client runs until killed (or --seconds T) and never gives up on errors: a refused or timed-out
connection (the impaired VM drops SYNs too) is retried at the next tick.
"""
import argparse
import socket
import sys
import threading
import time

CHUNK = b"x" * 65536
SO_MAX_PACING_RATE = getattr(socket, "SO_MAX_PACING_RATE", 47)


def addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def deadline_of(args):
    return time.monotonic() + args.seconds if args.seconds > 0 else float("inf")


def serve(args):
    def tcp_listener(port, handler):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((args.ip, port))
        srv.listen(256)
        while True:
            c, _ = srv.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    def sink(c):
        try:
            c.settimeout(60)
            while c.recv(262144):
                pass
        except OSError:
            pass
        finally:
            c.close()

    reply = b"y" * max(args.reply_bytes - 1, 0) + b"\n"

    def rr(c):
        try:
            c.settimeout(10)
            data = b""
            while b"\n" not in data:
                got = c.recv(4096)
                if not got:
                    return
                data += got
            c.sendall(reply)
        except OSError:
            pass
        finally:
            c.close()

    def udp_sink():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((args.ip, args.udp_port))
        while True:
            u.recv(65536)

    threads = [
        threading.Thread(target=tcp_listener, args=(args.sink_port, sink), daemon=True),
        threading.Thread(target=tcp_listener, args=(args.rr_port, rr), daemon=True),
        threading.Thread(target=udp_sink, daemon=True),
    ]
    for t in threads:
        t.start()
    print(f"traffic: serving on {args.ip} (tcp sink {args.sink_port}, tcp rr {args.rr_port}, udp {args.udp_port})", flush=True)
    while True:
        time.sleep(3600)


def bulk(args):
    dst = addr(args.to)
    end = deadline_of(args)
    while time.monotonic() < end:
        started = time.monotonic()
        s = socket.socket()
        try:
            if args.rate_mbit > 0:
                s.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, int(args.rate_mbit * 1e6 / 8))
            s.settimeout(10)
            s.connect(dst)
            s.settimeout(30)
            left = args.bytes if args.bytes > 0 else float("inf")
            while left > 0 and time.monotonic() < end:
                n = int(min(left, len(CHUNK)))
                s.sendall(CHUNK[:n])
                left -= n
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
        except OSError:
            time.sleep(0.5)
        finally:
            s.close()
        pause = args.every - (time.monotonic() - started)
        if pause > 0:
            time.sleep(pause)


def paced(end, period, act):
    """Calls act() every `period` seconds until `end` (a time.monotonic() deadline); a late call
    restarts the schedule from now instead of bursting to catch up."""
    next_at = time.monotonic()
    while time.monotonic() < end:
        act()
        next_at += period
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()


def short(args):
    dst = addr(args.to)

    def connect_once():
        try:
            s = socket.create_connection(dst, timeout=5)
            s.settimeout(5)
            s.sendall(b"GET / HTTP/1.0\n")
            while s.recv(65536):
                pass
            s.close()
        except OSError:
            pass

    paced(deadline_of(args), 1.0 / args.rate, connect_once)


def udp(args):
    dst = addr(args.to)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"u" * args.size

    def send_once():
        try:
            u.sendto(payload, dst)
        except OSError:
            pass

    paced(deadline_of(args), 1.0 / args.pps, send_once)


def main(argv):
    p = argparse.ArgumentParser(prog="traffic.py")
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--ip", required=True)
    s.add_argument("--sink-port", type=int, default=5001)
    s.add_argument("--rr-port", type=int, default=8080)
    s.add_argument("--udp-port", type=int, default=9999)
    s.add_argument("--reply-bytes", type=int, default=2000)
    for name in ("bulk", "short", "udp"):
        c = sub.add_parser(name)
        c.add_argument("--to", required=True)
        c.add_argument("--seconds", type=float, default=0)
        if name == "bulk":
            c.add_argument("--bytes", type=int, required=True)
            c.add_argument("--every", type=float, default=0)
            c.add_argument("--rate-mbit", type=float, default=0)
        elif name == "short":
            c.add_argument("--rate", type=float, required=True)
        else:
            c.add_argument("--pps", type=float, required=True)
            c.add_argument("--size", type=int, default=500)
    args = p.parse_args(argv)
    {"serve": serve, "bulk": bulk, "short": short, "udp": udp}[args.mode](args)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass
