"""moto's server with each SQS ReceiveMessage atomic, as in SQS.

moto picks a FIFO queue's messages without a lock: two receives at once may both take a message,
or take messages of one group, which SQS never does; and a long poll does not see a group that
frees while it waits. Competing consumers of one FIFO queue (the cluster tests) need SQS's
behaviour, so this server picks messages for one receive at a time, and a long poll looks again
every 10 ms until it has some or its wait is over.

    python moto-atomic-receive.py -H 127.0.0.1 -p PORT
"""
import threading
import time

from moto.server import main
from moto.sqs.models import SQSBackend

picking = threading.Lock()
receive_message = SQSBackend.receive_message


def atomic_receive_message(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
    deadline = time.monotonic() + (wait_seconds_timeout or 0)
    while True:
        with picking:
            messages = receive_message(self, queue_name, count, 0, *args, **kwargs)
        if messages or time.monotonic() >= deadline:
            return messages
        time.sleep(0.01)


SQSBackend.receive_message = atomic_receive_message
main()
