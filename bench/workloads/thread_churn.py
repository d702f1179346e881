# A server that starts a thread per request: short threads one after another, each
# handling a small JSON request, in a program that has named a few thousand functions
# (what it imported). What a thread that ended leaves behind must not add up.
import email.parser
import http.client
import json
import threading

from _scale import scaled


def handle(request, replies):
    body = json.loads(request)
    replies.append(json.dumps({"id": body["id"], "total": sum(body["values"])}))


replies = []
for i in range(scaled(200)):
    request = json.dumps({"id": i, "values": list(range(i % 50))})
    worker = threading.Thread(target=handle, args=(request, replies))
    worker.start()
    worker.join()
print(len(replies), json.loads(replies[-1])["total"])
