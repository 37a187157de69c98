#!/usr/bin/env python3
"""stackcat.py -- splits a proxy's CPU samples into where the time goes.

Reads `perf script` output (call graphs, one sample per blank-line separated
block) and puts every sample of the given command into the first category
whose test its stack passes:

  tcp send          tcp_sendmsg, without the receive side below
  tcp send: peer rx on loopback, the sender's softirq runs the receiver's
                    TCP input (the client's socket) -- paid by every proxy
  tcp recv: ack     tcp_recvmsg sending the window/ACK segment (and, on
                    loopback, the backend's TCP input for it)
  tcp recv          the rest of tcp_recvmsg (copy out, queue handling)
  softirq/timers    other interrupt work landing on the proxy's core
  event wait        epoll_wait / io_uring waits and the scheduler
  syscall/kernel    everything else in the kernel: syscall entry, fd
                    lookup, io_uring submission, epoll bookkeeping
  user              the proxy's own code and its libraries

The first four are the kernel's TCP work for the bytes relayed; a proxy
decides how many packets it sends, not what each costs.  The last three are
what the proxy's design controls.

usage: stackcat.py PERF_SCRIPT_TXT COMM TOKENS  -> JSON on stdout
"""
import json
import sys

CATS = [
    ("tcp_send", lambda s: "tcp_sendmsg" in s and "net_rx_action" not in s),
    ("tcp_send_peer_rx", lambda s: "tcp_sendmsg" in s),
    ("tcp_recv_ack", lambda s: "tcp_recvmsg" in s and "__tcp_transmit_skb" in s),
    ("tcp_recv", lambda s: "tcp_recvmsg" in s),
    ("softirq", lambda s: "handle_softirqs" in s or "irq_exit_rcu" in s),
    ("event_wait", lambda s: any(x in s for x in ("ep_poll", "do_epoll_wait", "io_cqring_wait",
                                                  "schedule", "__schedule"))),
    ("syscall_kernel", lambda s: any(x.startswith(("do_syscall", "entry_SYSCALL", "asm_"))
                                     for x in s)),
    ("user", lambda s: True),
]
TCP = ("tcp_send", "tcp_send_peer_rx", "tcp_recv_ack", "tcp_recv")


def samples(path, comm):
    cur = None
    keep = False
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if cur is not None and keep:
                    yield cur
                cur = None
                continue
            if not line[0].isspace():
                keep = line.split(None, 1)[0] == comm
                cur = set()
                continue
            parts = line.split()
            if cur is not None and len(parts) >= 2:
                cur.add(parts[1].split("+", 1)[0])
    if cur is not None and keep:
        yield cur


def main():
    path, comm, tokens = sys.argv[1], sys.argv[2], float(sys.argv[3])
    period_us = float(sys.argv[4]) if len(sys.argv) > 4 else 250.0
    counts = {c: 0 for c, _ in CATS}
    n = 0
    for st in samples(path, comm):
        n += 1
        for name, test in CATS:
            if test(st):
                counts[name] += 1
                break
    per_tok = {c: (counts[c] * period_us / tokens if tokens else None) for c in counts}
    out = {
        "samples": n,
        "tokens": tokens,
        "us_per_token": per_tok,
        "us_per_token_total": n * period_us / tokens if tokens else None,
        "us_per_token_tcp": sum(per_tok[c] for c in TCP) if tokens else None,
        "us_per_token_proxy": sum(per_tok[c] for c in counts if c not in TCP) if tokens else None,
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
