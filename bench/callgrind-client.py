"""A fixed-count HTTP/1.1 keep-alive client for bench/callgrind-request-path: exactly N requests
over C connections, so a callgrind count divides by a known number (loadgen runs for a time).

usage: callgrind-client.py PORT MODE N [C] [SEED]
MODE: fixtures (PUT N users named as loadgen's fixtures, useraaaaa, useraaaab, ...),
      get (GET users picked at random among the first 1000), put (PUT fresh random users with a
      random date of birth, as loadgen's put scenario). Exits 1 if any answer was 4xx or 5xx.
"""
import asyncio, random, sys

def user_name(idx):
    letters = []
    for _ in range(5):
        letters.append(chr(ord('a') + idx % 26)); idx //= 26
    return "user" + "".join(reversed(letters))

def fresh_name(rng):
    return "fresh" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12))

async def conn(port, reqs, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for method, path, body in reqs:
        head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        if body is not None:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        data = head.encode() + b"\r\n" + (body or b"")
        writer.write(data)
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if length:
            await reader.readexactly(length)
        if status >= 400:
            errors.append(status)
    writer.close()

async def main():
    port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    c = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    rng = random.Random(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    reqs = []
    for i in range(n):
        if mode == "fixtures":
            reqs.append(("PUT", f"/hello/{user_name(i)}", b'{"dateOfBirth":"1990-05-17"}'))
        elif mode == "get":
            reqs.append(("GET", f"/hello/{user_name(rng.randrange(1000))}", None))
        elif mode == "put":
            y, m, d = rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
            reqs.append(("PUT", f"/hello/{fresh_name(rng)}", f'{{"dateOfBirth":"{y:04}-{m:02}-{d:02}"}}'.encode()))
    per = [reqs[i::c] for i in range(c)]
    errors = []
    await asyncio.gather(*(conn(port, p, errors) for p in per if p))
    if errors:
        print("errors:", len(errors), errors[:5], file=sys.stderr); sys.exit(1)

asyncio.run(main())
