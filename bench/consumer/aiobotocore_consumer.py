"""The Python side of scripts/bench-consumer: an aiobotocore SQS consumer loop.

The usual asyncio shape, done reasonably: POLLERS concurrent loops on one event loop and one
client (one aiohttp connection pool), each receiving up to 10 messages with a long poll, handling
every message, then deleting the batch with one DeleteMessageBatch. Handling a message means what
herald's queue-test-consumer does with it: append `id<TAB>body` to the output file and fsync it
(--no-fsync to skip the fsync). Like herald's consumer, it remembers the IDs it handled and deletes
a message delivered again without handling it a second time (moto, under concurrent receives,
now and then hands one message to two pollers). It stops once MESSAGES distinct messages were
handled and deleted, cancelling the long polls still waiting.

    python aiobotocore_consumer.py --endpoint http://127.0.0.1:5000 --queue-url URL \
        --messages 10000 --output /dev/shm/out.tsv [--pollers 2] [--wait-time 20]

It prints one JSON line on stdout at the end: counts and its own timings.
"""

import argparse
import asyncio
import json
import os
import sys
import time

from aiobotocore.session import get_session
from botocore.config import Config


class Output:
    """An append-only file, one `id<TAB>body` line per handled message."""

    def __init__(self, path: str, fsync: bool) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.fsync = fsync

    def append(self, message_id: str, body: str) -> None:
        os.write(self.fd, f"{message_id}\t{body}\n".encode())
        if self.fsync:
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class Consumer:
    def __init__(self, client, args, output: Output) -> None:
        self.client = client
        self.queue_url = args.queue_url
        self.target = args.messages
        self.wait_time = args.wait_time
        self.output = output
        self.handled = 0
        self.deleted = 0
        self.receives = 0
        self.empty_receives = 0
        self.delete_failures = 0
        self.duplicates = 0
        self.seen: set[str] = set()
        self.first_handled_at = None
        self.done = asyncio.Event()
        # The receive each poller is waiting on, so that the end can cancel it (and only it).
        self.waiting: set[asyncio.Future] = set()

    async def poll(self) -> None:
        while not self.done.is_set():
            receive = asyncio.ensure_future(self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=self.wait_time,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"],
                MessageAttributeNames=["All"],
            ))
            self.waiting.add(receive)
            try:
                response = await receive
            except asyncio.CancelledError:
                if self.done.is_set():
                    return
                raise
            finally:
                self.waiting.discard(receive)
            self.receives += 1
            messages = response.get("Messages", [])
            if not messages:
                self.empty_receives += 1
                continue
            entries = []
            for index, message in enumerate(messages):
                if message["MessageId"] in self.seen:
                    self.duplicates += 1
                else:
                    self.seen.add(message["MessageId"])
                    self.output.append(message["MessageId"], message["Body"])
                    if self.first_handled_at is None:
                        self.first_handled_at = time.monotonic()
                    self.handled += 1
                entries.append({"Id": f"m{index}", "ReceiptHandle": message["ReceiptHandle"]})
            result = await self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = result.get("Failed", [])
            self.delete_failures += len(failed)
            for failure in failed:
                print(f"delete failed: {failure}", file=sys.stderr)
            self.deleted += len(entries) - len(failed)
            if self.handled >= self.target:
                self.finish()

    def finish(self) -> None:
        self.done.set()
        for receive in list(self.waiting):
            receive.cancel()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--messages", type=int, required=True, help="stop after handling this many")
    parser.add_argument("--output", required=True)
    parser.add_argument("--pollers", type=int, default=2)
    parser.add_argument("--wait-time", type=int, default=20, help="long-poll seconds (0-20)")
    parser.add_argument("--no-fsync", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    output = Output(args.output, fsync=not args.no_fsync)
    session = get_session()
    config = Config(
        max_pool_connections=max(10, 2 * args.pollers),
        # Longer than the long poll, like herald's client.
        read_timeout=args.wait_time + 10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    async with session.create_client(
        "sqs", region_name="us-east-1", endpoint_url=args.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config,
    ) as client:
        consumer = Consumer(client, args, output)
        pollers = [asyncio.create_task(consumer.poll()) for _ in range(args.pollers)]
        await asyncio.gather(*pollers)
    output.close()
    finished = time.monotonic()
    print(json.dumps({
        "handled": consumer.handled,
        "deleted": consumer.deleted,
        "delete_failures": consumer.delete_failures,
        "duplicates_skipped": consumer.duplicates,
        "receives": consumer.receives,
        "empty_receives": consumer.empty_receives,
        "seconds": round(finished - started, 3),
        "seconds_first_to_last": round(finished - (consumer.first_handled_at or finished), 3),
    }))


if __name__ == "__main__":
    asyncio.run(main())
