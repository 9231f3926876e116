"""bench/ipc/mp_ipc.py -- the peer of corio_ipc.c: messages per second
between two processes through multiprocessing.Queue or multiprocessing.Pipe
(send_bytes / recv_bytes: no pickling of the payload beyond bytes). The
parent puts COUNT messages of SIZE bytes; the child gets them all. Prints
one RESULT line.

    python3 mp_ipc.py queue|pipe SIZE COUNT"""
import multiprocessing as mp
import sys
import time


def consume_queue(q, count):
    for _ in range(count):
        q.get()


def consume_pipe(conn, count):
    for _ in range(count):
        conn.recv_bytes()


def main():
    kind, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    msg = b"\x07" * size
    ctx = mp.get_context("fork")
    if kind == "queue":
        q = ctx.Queue(1024)
        child = ctx.Process(target=consume_queue, args=(q, count))
        child.start()
        t0 = time.perf_counter()
        for _ in range(count):
            q.put(msg)
    else:
        a, b = ctx.Pipe()
        child = ctx.Process(target=consume_pipe, args=(b, count))
        child.start()
        t0 = time.perf_counter()
        for _ in range(count):
            a.send_bytes(msg)
    child.join()
    secs = time.perf_counter() - t0
    if child.exitcode != 0:
        sys.exit(f"mp_ipc: the consumer failed ({child.exitcode})")
    print(f"RESULT impl=multiprocessing kind={kind} size={size} msgs={count} "
          f"secs={secs:.4f} rate={count / secs:.0f}")


if __name__ == "__main__":
    main()
