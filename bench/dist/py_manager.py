"""bench/dist/py_manager.py -- the task-queue benchmark's Python peer:
multiprocessing.managers.BaseManager doing the seed's loop (D1/D2): a
manager process serving a task queue and a result queue (authkey b'bench'),
W worker processes that connect to it by address and do
`n = task.get(timeout=1); result.put('%d * %d = %d' % (n, n, n*n))` (no
sleep), and the producer, which puts N tasks and gets N results.
Prints "TASKS N SECONDS s" (first put to last result).

    python3 py_manager.py PORT WORKERS N
"""
import queue
import sys
import time
from multiprocessing import Process
from multiprocessing.managers import BaseManager

task_queue = queue.Queue()
result_queue = queue.Queue()


def get_task_queue():
    return task_queue


def get_result_queue():
    return result_queue


class QueueManager(BaseManager):
    pass


def worker(port):
    class M(BaseManager):
        pass
    M.register('get_task_queue')
    M.register('get_result_queue')
    m = M(address=('127.0.0.1', port), authkey=b'bench')
    m.connect()
    task = m.get_task_queue()
    result = m.get_result_queue()
    while True:
        try:
            n = task.get(timeout=1)
        except queue.Empty:
            continue
        if n is None:
            return
        result.put('%d * %d = %d' % (n, n, n * n))


def main():
    port, workers, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    QueueManager.register('get_task_queue', callable=get_task_queue)
    QueueManager.register('get_result_queue', callable=get_result_queue)
    manager = QueueManager(address=('127.0.0.1', port), authkey=b'bench')
    manager.start()
    task = manager.get_task_queue()
    result = manager.get_result_queue()
    procs = [Process(target=worker, args=(port,)) for _ in range(workers)]
    for p in procs:
        p.start()
    time.sleep(0.5)   # let the workers connect
    t0 = time.monotonic()
    for i in range(n):
        task.put(i % 10001)
    for _ in range(n):
        result.get(timeout=60)
    secs = time.monotonic() - t0
    for _ in procs:
        task.put(None)
    for p in procs:
        p.join()
    manager.shutdown()
    print("TASKS %d SECONDS %.6f" % (n, secs), flush=True)


if __name__ == '__main__':
    main()
