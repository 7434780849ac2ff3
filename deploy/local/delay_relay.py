"""A TCP relay that delays every byte by a fixed time in each direction: the inter-region latency
of deploy/local/multi-region.sh (this kernel has no netem). Bytes keep their order; a chunk read at
time t is written at t + delay. Bandwidth is left to tc's tbf on the links.

usage: delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT ONE_WAY_DELAY_MS
"""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, chunk = await queue.get()
            if chunk is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    delivery = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            await queue.put((time.monotonic() + delay, chunk))
    except (ConnectionError, OSError):
        pass
    await queue.put((time.monotonic() + delay, None))
    try:
        await delivery
    except (ConnectionError, OSError):
        pass


async def main(listen, target, delay_ms):
    listen_host, listen_port = listen.rsplit(":", 1)
    target_host, target_port = target.rsplit(":", 1)
    delay = delay_ms / 1000

    async def handle(client_reader, client_writer):
        await asyncio.sleep(delay)  # the SYN's trip
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, int(target_port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, upstream_writer, delay), pump(upstream_reader, client_writer, delay))

    server = await asyncio.start_server(handle, listen_host, int(listen_port))
    print(f"relay {listen} -> {target} (+{delay_ms} ms each way)", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
