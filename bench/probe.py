"""A probe for npm run bench:shed: one keep-alive connection, one single-row prediction every
20 ms for SECONDS, each answer's status and time; prints them as JSON. It runs in a process of its
own, so what it measures is the server's answer, not a load generator's own queue."""

import http.client
import json
import sys
import time

host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
body = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]})
connection = http.client.HTTPConnection(host, port, timeout=30)
answers = []
until = time.monotonic() + seconds
while time.monotonic() < until:
    started = time.perf_counter()
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    answers.append([response.status, (time.perf_counter() - started) * 1000])
    if response.getheader("Connection", "").lower() == "close":
        connection.close()
        connection = http.client.HTTPConnection(host, port, timeout=30)
    time.sleep(0.02)
print(json.dumps(answers))
